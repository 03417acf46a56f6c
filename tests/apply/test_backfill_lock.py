"""One backfill per table at a time; a finished job is not applied twice by accident."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.backfill import LOCK_CLASS, BackfillSpec, run_backfill
from pgwarden.errors import Refused
from tests.apply.conftest import cli, scalar

ROWS = 100_000
BUMP = "bal = bal + 1"


@pytest.fixture
def ledger(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, bal integer NOT NULL DEFAULT 0)")
        c.execute(f"INSERT INTO ledger (id) SELECT g FROM generate_series(1, {ROWS}) g")
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
    # small batches that stay small: the first run is still going when the second starts
    slow = ("--batch-size", "100", "--target-batch-ms", "1")
    procs = []
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                _backfill(ledger, tmp_path, *slow),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
        )
        time.sleep(0.3)
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            p.kill()
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    refused = next(r for r in results if r[0] == 1)
    assert "another backfill of public.ledger is running (pid " in refused[2], refused[2]
    assert "Traceback" not in refused[2]
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
