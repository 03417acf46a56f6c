"""`upgrade check` when not everything is available: a role without superuser, and no
server binaries of the source major to restore a copy with."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from psycopg import sql

from pgwarden.pg.cluster import Cluster
from pgwarden.upgrade.check_run import CheckOptions, check_upgrade
from tests.fixtures.pg import new_database
from tests.upgrade.conftest import installation


def _check(
    dsn: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgwarden",
            "upgrade",
            "check",
            "--database-url",
            dsn,
            "--to",
            "18",
            "--format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
        env=env,
    )
    data = orjson.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, data, proc.stderr


def test_an_ordinary_role_gets_the_catalog_checks(cluster_of: Callable[[int], Cluster]) -> None:
    cluster = cluster_of(15)
    dsn = new_database(cluster)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS upgrade_reader")
        c.execute("CREATE ROLE upgrade_reader LOGIN")
        c.execute("CREATE TABLE nokey (v text)")
        c.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO upgrade_reader").format(
                sql.Identifier(str(db))
            )
        )
    try:
        code, data, stderr = _check(cluster.dsn(str(db), user="upgrade_reader"), "--copy", "none")
        assert code == 1, stderr
        codes = {i["code"] for i in data["issues"]}
        assert {"no-replica-identity", "wal-level", "replication-role"} <= codes
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM upgrade_reader").format(
                    sql.Identifier(str(db))
                )
            )
            c.execute("DROP ROLE upgrade_reader")


def test_without_the_source_major_binaries_the_catalog_report_still_comes(
    cluster_of: Callable[[int], Cluster],
) -> None:
    dsn = new_database(cluster_of(15))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE jobs (id int PRIMARY KEY, fn regproc)")
    # Only the 18 installation is visible: no PostgreSQL 15 to restore the copy into.
    env = dict(os.environ, PGWARDEN_PG_BINDIR=str(installation(18).bindir))
    code, data, stderr = _check(dsn, env=env)
    assert code == 1, stderr
    issues = {i["code"]: i for i in data["issues"]}
    assert issues["reg-types"]["objects"] == ["public.jobs.fn (regproc)"]
    not_run = issues["pg-upgrade-check-not-run"]
    assert "PostgreSQL 15" in not_run["message"] and not_run["routes"] == ["pg_upgrade"]
    assert "--copy none" in not_run["hint"]
    assert data["pg_upgrade_check"] is None


def test_all_databases_reads_the_other_databases_of_the_cluster() -> None:
    """On a cluster of its own: the shared session cluster holds a database per test run
    before this one (hundreds in a full run), and --all-databases reads every one of them."""
    with Cluster.start(installation(15)) as cluster:
        main = new_database(cluster)
        other = new_database(cluster)
        other_name = psycopg.conninfo.conninfo_to_dict(other)["dbname"]
        with psycopg.connect(main, autocommit=True) as c:
            c.execute("CREATE TABLE clean (id int PRIMARY KEY)")
        with psycopg.connect(other, autocommit=True) as c:
            c.execute("CREATE TABLE hooks (id int PRIMARY KEY, fn regprocedure)")
        # pg_upgrade upgrades every database: the reg* column elsewhere blocks it too.
        both = check_upgrade(main, CheckOptions(18, copy="none", all_databases=True))
        # Without the flag only the given database is read.
        one = check_upgrade(main, CheckOptions(18, copy="none", routes=("pg_upgrade",)))
    elsewhere = [i for i in both.issues if i.code == "reg-types" and i.database == other_name]
    assert [i.objects for i in elsewhere] == [("public.hooks.fn (regprocedure)",)]
    assert both.blockers("pg_upgrade")
    assert not [i for i in one.issues if i.code == "reg-types"]
    assert not one.blocked
