"""A killed apply (kill -9, a CI runner torn down) leaves no transaction holding its locks:
the server checks that the client is still there while the statement runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.apply.conftest import cli, scalar, wait_until, write_sql

RUNNING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND query LIKE 'SELECT pg_sleep%')"
)
GONE = (
    "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply')"
)


def test_a_killed_apply_releases_its_locks_at_once(shop: str, tmp_path: Path) -> None:
    # The file's transaction takes ACCESS EXCLUSIVE on invoices, then runs for 10 minutes
    # (a long UPDATE, say): killed, no watchdog is left to cancel it.
    path = write_sql(
        tmp_path, "ALTER TABLE invoices ADD COLUMN note text;\nSELECT pg_sleep(600);\n"
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
    run = scalar(shop, "SELECT state FROM pgwarden.runs")
    assert run == "running"  # as the killed client left it; `status` shows it interrupted
