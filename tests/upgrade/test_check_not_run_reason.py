"""`upgrade check` in text says why pg_upgrade --check did not run: `--copy none` only
when it was asked for, else that no copy could be made (real cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database
from tests.upgrade.conftest import installation


def _check(dsn: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", "upgrade", "check", "--database-url", dsn,
         "--to", "18", *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False,
        env=env,
    )  # fmt: skip


def test_the_summary_says_why_pg_upgrade_check_did_not_run(
    cluster_of: Callable[[int], Cluster],
) -> None:
    dsn = new_database(cluster_of(15))
    # only the 18 installation is visible: no PostgreSQL 15 to restore the copy into
    env = dict(os.environ, PGWARDEN_PG_BINDIR=str(installation(18).bindir))
    failed = _check(dsn, env=env)
    assert failed.returncode == 1, failed.stderr
    assert "pg_upgrade --check not run (--copy none)" not in failed.stdout, failed.stdout
    assert (
        "  pg_upgrade --check not run: no copy could be made (pg-upgrade-check-not-run below)"
        in failed.stdout
    ), failed.stdout
    asked = _check(dsn, "--copy", "none", "--route", "pg_upgrade", env=env)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "  pg_upgrade --check not run (--copy none)" in asked.stdout, asked.stdout
