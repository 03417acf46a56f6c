"""One cancel contract: Ctrl-C or `pgwarden cancel` stops the step cleanly; resume finishes."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan, cancel_run, resume_run, status
from tests.apply.conftest import (
    CIC_WAITING,
    INVALID,
    Recorder,
    apply_in_thread,
    cli,
    plan_of,
    scalar,
    wait_until,
    write_sql,
)

CIC = "CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);"
# An open snapshot makes CREATE INDEX CONCURRENTLY wait after it created its INVALID index.
SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM settings"


def test_cancel_from_another_terminal_drops_the_invalid_index(
    shop: str, holder, tmp_path: Path, recorder: Recorder
) -> None:
    snap = holder(SNAPSHOT)
    path = write_sql(tmp_path, CIC)
    t, results = apply_in_thread(shop, path, recorder)
    wait_until(shop, CIC_WAITING)
    assert scalar(shop, INVALID) == 1
    cancelled = cancel_run(shop)
    t.join(60)
    assert cancelled.state == "cancelled"
    result = results[0]
    assert getattr(result, "state", None) == "cancelled"
    assert scalar(shop, INVALID) == 0
    kinds = recorder.kinds()
    assert kinds.index("cleanup") < kinds.index("cancelled")
    assert status(shop).runs[0].state == "cancelled"

    snap.commit()
    resumed = resume_run(database_url=shop, policy=GuardPolicy(env="staging"))
    assert resumed.state == "done"
    assert scalar(
        shop,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_created_at_idx'::regclass",
    )


def test_ctrl_c_during_create_index_concurrently_then_resume(
    shop: str, holder, tmp_path: Path
) -> None:
    snap = holder(SNAPSHOT)
    path = write_sql(tmp_path, CIC)
    journal = tmp_path / "journal.jsonl"
    proc = subprocess.Popen(
        cli(
            "apply",
            str(path),
            "--database-url",
            shop,
            "--env",
            "staging",
            "--lock-timeout-ms",
            "120000",
            "--journal-file",
            str(journal),
            "--no-file-transaction",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_until(shop, CIC_WAITING)
        assert scalar(shop, INVALID) == 1
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "cancelled" in err and "Traceback" not in err
    assert scalar(shop, INVALID) == 0
    assert '"event":"cancelled"' in journal.read_text()

    snap.commit()
    done = subprocess.run(
        cli("resume", "--database-url", shop, "--journal-file", str(journal)),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert scalar(shop, INVALID) == 0
    assert scalar(shop, "SELECT to_regclass('invoices_created_at_idx') IS NOT NULL")


def test_an_unnamed_build_left_invalid_by_an_earlier_run_is_dropped_and_rebuilt(
    shop: str, holder, tmp_path: Path
) -> None:
    """An INVALID index with the name the server generates for an unnamed build is a leftover."""
    import psycopg

    snap = holder(SNAPSHOT)  # the build waits for this snapshot after creating its index
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("SET statement_timeout = '1s'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("CREATE INDEX CONCURRENTLY ON invoices (created_at)")
    snap.rollback()
    assert scalar(shop, INVALID) == 1  # the crashed run's leftover: invoices_created_at_idx
    path = write_sql(tmp_path, "CREATE INDEX CONCURRENTLY ON invoices (created_at);")
    result = apply_plan(
        plan_of(path, file_transaction=False), database_url=shop, policy=GuardPolicy(env="staging")
    )
    assert result.state == "done"
    assert scalar(shop, INVALID) == 0
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'invoices' "
            "AND indexdef LIKE '%(created_at)'",
        )
        == 1
    )
