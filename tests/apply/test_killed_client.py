"""A killed apply (kill -9, a CI runner torn down) leaves no transaction holding its locks:
the server checks that the client is still there while the statement runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from tests.apply.conftest import cli, scalar, wait_until, write_sql

RUNNING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND query LIKE 'SELECT pg_sleep%' AND wait_event = 'PgSleep')"
)
GONE = (
    "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply')"
)


def test_a_killed_apply_releases_its_locks_at_once(shop: str, tmp_path: Path) -> None:
    # The file's transaction takes ACCESS EXCLUSIVE on invoices, then runs for 10 minutes
    # (a long UPDATE, say): killed, no watchdog is left to cancel it.
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("CREATE TABLE slow_flag ()")  # the statement is slow while this exists
    path = write_sql(
        tmp_path,
        "ALTER TABLE invoices ADD COLUMN note text;\n"
        "SELECT pg_sleep(CASE WHEN to_regclass('slow_flag') IS NULL THEN 0 ELSE 600 END);\n",
    )
    proc = subprocess.Popen(
        cli("apply", str(path), "--database-url", shop, "--env", "staging"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        wait_until(shop, RUNNING)
        proc.kill()
        proc.wait(60)
    finally:
        proc.kill()
    wait_until(shop, GONE, timeout_s=60)  # before: it held the lock for the whole 600 s
    assert scalar(shop, "SELECT count(*) FROM pg_locks WHERE relation = 'invoices'::regclass") == 0
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'invoices'::regclass "
            "AND attname = 'note'",
        )
        == 0
    )
    run = scalar(shop, "SELECT id FROM pgwarden.runs WHERE state = 'running'")
    assert run is not None  # as the killed client left it; `status` shows it interrupted
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("DROP TABLE slow_flag")
    common = ["--database-url", shop]
    assert "`pgwarden resume` continues it" in _cli(tmp_path, "cancel", *common).stderr
    resumed = _cli(tmp_path, "resume", *common)
    assert resumed.returncode == 0, resumed.stderr
    # Continued: nothing left to cancel or resume, and cancel does not send one back to it.
    plain = _cli(tmp_path, "cancel", *common)
    assert plain.returncode == 2 and "nothing to cancel: no apply is running\n" in plain.stderr
    named = _cli(tmp_path, "cancel", *common, "--run", str(run))
    assert named.returncode == 2, named.stdout
    assert "nothing to cancel; run " in named.stderr and "continued it" in named.stderr


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=cwd,
        timeout=120, check=False,
    )  # fmt: skip
