"""`pgwarden upgrade check` end to end: the catalog checks and pg_upgrade --check on a
restored copy in throwaway clusters, PostgreSQL 15 -> 18 and 16 -> 17."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database


def _check(dsn: str, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pgwarden", "upgrade", "check", "--database-url", dsn, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    data = orjson.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, data, proc.stderr


def _codes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["code"]: i for i in data["issues"]}


def test_15_to_18_finds_planted_blockers_and_pg_upgrade_agrees(
    cluster_of: Callable[[int], Cluster],
) -> None:
    cluster = cluster_of(15)
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE jobs (id int PRIMARY KEY, handler regprocedure)")
        c.execute("INSERT INTO jobs VALUES (1, 'now()')")
        c.execute("CREATE TABLE log (at timestamptz, line text)")  # no key
        c.execute("CREATE EXTENSION pgcrypto")  # the 18 wheel does not ship it
        before = c.execute("SELECT count(*) FROM pg_class").fetchone()

    code, data, stderr = _check(dsn, "--to", "18", "--format", "json")

    assert code == 1, stderr
    issues = _codes(data)
    assert issues["reg-types"]["objects"] == ["public.jobs.handler (regprocedure)"]
    assert issues["no-replica-identity"]["objects"] == ["public.log"]
    assert issues["no-replica-identity"]["routes"] == ["logical"]
    assert issues["extension-missing"]["objects"] == ["pgcrypto 1.3"]
    # pg_upgrade itself, run between throwaway 15 and 18 clusters on a restored copy.
    check = data["pg_upgrade_check"]
    assert check["ok"] is False
    assert "Checking for reg* data types in user tables" in check["failed_checks"]
    assert issues["pg-upgrade-check"]["objects"] == ["tables_using_reg.txt: public.jobs.handler"]
    assert data["copy"]["kind"] == "schema"
    assert data["routes"] == {"pg_upgrade": "blocked", "logical": "blocked"}
    # Read-only: the source is as it was.
    with psycopg.connect(dsn, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_class").fetchone() == before


def test_a_clean_database_is_ready_and_exits_0(cluster_of: Callable[[int], Cluster]) -> None:
    dsn = new_database(cluster_of(16))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, name text)")
        # regclass and regtype keep their OIDs through pg_upgrade: not refused.
        c.execute("CREATE TABLE hooks (id int PRIMARY KEY, tbl regclass, typ regtype)")
    # pg_upgrade --check itself passes on such a copy: see test_rehearse_upgrade.py.
    code, data, stderr = _check(
        dsn, "--to", "17", "--route", "pg_upgrade", "--copy", "none", "--format", "json"
    )
    assert code == 0, stderr
    assert data["routes"] == {"pg_upgrade": "ready"}
    assert data["pg_upgrade_check"] is None
    assert not [
        i for i in data["issues"] if i["severity"] == "blocker" and "pg_upgrade" in i["routes"]
    ]


def test_usage_errors_are_one_message_with_exit_2(cluster_of: Callable[[int], Cluster]) -> None:
    dsn = new_database(cluster_of(16))
    code, _data, stderr = _check(dsn, "--to", "15", "--copy", "none")
    assert code == 2
    assert "not newer than the source's PostgreSQL 16" in stderr
    code, _data, stderr = _check("postgresql://nobody@127.0.0.1:1/x", "--to", "18")
    assert code == 2
    assert "cannot connect" in stderr and "Traceback" not in stderr
