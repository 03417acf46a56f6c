"""One backfill per table at a time; a finished job is not applied twice by accident."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.backfill import LOCK_CLASS, BackfillSpec, run_backfill
from pgwarden.apply.identity import stamp_database
from pgwarden.errors import Refused
from tests.apply.conftest import cli, scalar, wait_until

ROWS = 10_000  # ten batches of the default size
BUMP = "bal = bal + 1"
JOB_LOCKED = (  # a backfill holds its job's lock (LOCK_CLASS, the table's OID)
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    f"AND classid = {LOCK_CLASS}::oid AND objsubid = 2)"
)


@pytest.fixture
def ledger(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, bal integer NOT NULL DEFAULT 0)")
        c.execute(f"INSERT INTO ledger (id) SELECT g FROM generate_series(1, {ROWS}) g")
        # stamped, as backfill (like apply) refuses an unstamped database holding data
        stamp_database(c, "staging", protected=False, by="tests")
    return db


def _backfill(dsn: str, cwd: Path, *extra: str) -> list[str]:
    return cli(
        "backfill",
        "--database-url",
        dsn,
        "--env",
        "staging",
        "--yes",
        "--no-health-gate",
        "--table",
        "ledger",
        "--set",
        BUMP,
        *extra,
    )


def test_two_concurrent_runs_of_the_same_backfill_apply_it_once(
    ledger: str, tmp_path: Path
) -> None:
    # The first run's first batch waits for a row the test keeps locked: the run holds its
    # job's lock for as long as the second needs to start, however slow the machine.
    with psycopg.connect(ledger) as row_lock:
        row_lock.execute("SELECT 1 FROM ledger WHERE id = 1 FOR UPDATE")
        first = subprocess.Popen(
            _backfill(ledger, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            wait_until(ledger, JOB_LOCKED)
            second = subprocess.run(
                _backfill(ledger, tmp_path),
                capture_output=True,
                text=True,
                timeout=300,
                cwd=tmp_path,
            )
            row_lock.commit()
            _out, err = first.communicate(timeout=300)
        finally:
            first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 1, second.stdout + second.stderr
    assert "another backfill of public.ledger is running (pid " in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    assert scalar(ledger, "SELECT count(*) FROM ledger WHERE bal <> 1") == 0


def test_a_finished_backfill_is_not_run_again_unless_asked(ledger: str, tmp_path: Path) -> None:
    first = subprocess.run(
        _backfill(ledger, tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    # rows added after the job finished, with keys above the last one it did
    scalar(ledger, f"INSERT INTO ledger (id) VALUES ({ROWS + 1}), ({ROWS + 2}) RETURNING 1")

    again = subprocess.run(
        _backfill(ledger, tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert again.returncode == 1, again.stderr
    assert "already finished" in again.stderr and "--again" in again.stderr
    assert "Traceback" not in again.stderr
    assert scalar(ledger, "SELECT count(*) FROM ledger WHERE bal <> 1") == 2  # the new rows

    asked = subprocess.run(
        _backfill(ledger, tmp_path, "--again"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert asked.returncode == 0, asked.stderr
    assert scalar(ledger, "SELECT count(*) FROM ledger WHERE bal <> 2") == 2
    assert scalar(ledger, "SELECT min(bal) FROM ledger") == 1


def test_the_same_job_spelled_differently_is_the_same_job(ledger: str) -> None:
    """The table is resolved before the job is identified: public.ledger is ledger."""
    run_backfill(ledger, BackfillSpec("ledger", BUMP))
    with pytest.raises(Refused, match="already finished"):
        run_backfill(ledger, BackfillSpec("public.ledger", BUMP))
    assert scalar(ledger, "SELECT max(bal) FROM ledger") == 1


def test_a_backfill_holding_the_table_refuses_another_job_on_it(ledger: str) -> None:
    """The lock is taken per table: two jobs on one table would fight over the same rows."""
    with psycopg.connect(ledger, autocommit=True) as other:
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)",
            (LOCK_CLASS, scalar(ledger, "SELECT 'ledger'::regclass::oid::int")),
        )
        with pytest.raises(Refused, match=r"another backfill of public\.ledger is running") as e:
            run_backfill(ledger, BackfillSpec("ledger", "bal = 0"))
        assert f"pid {other.info.backend_pid}" in str(e.value)
    assert scalar(ledger, "SELECT max(bal) FROM ledger") == 0
