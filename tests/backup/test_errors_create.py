"""backup create and restore under a database's own timeouts, and a cancelled query named."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden.backup import api
from pgwarden.backup.restore import describe_target, restore_backup
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

BIG = (
    "CREATE TABLE events (id int PRIMARY KEY, body text);"
    " INSERT INTO events SELECT g, repeat('x', 20) || g FROM generate_series(1, 1000000) g;"
)


def _statement_timeout(dsn: str, value: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        db = conn.info.dbname
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
                sql.Identifier(db), sql.Literal(value)
            )
        )


def test_a_50ms_statement_timeout_on_the_database_does_not_break_backup(
    pg_cluster: Cluster, tmp_path: Path
):
    src = new_database(pg_cluster)
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute(BIG)
    _statement_timeout(src, "50ms")  # the checksum scan of 1M rows takes far longer
    cat = tmp_path / "catalogue"
    m = api.create(src, catalogue=cat)
    assert {t.qualified: t.rows for t in m.tables} == {"public.events": 1_000_000}
    target = new_database(pg_cluster)
    _statement_timeout(target, "50ms")  # restore's checksum comparison must survive it too
    result = restore_backup(api.open_catalogue(cat), m.id, describe_target(target))
    assert result.ok, result.mismatches


def test_a_cancelled_query_is_named_as_such(db: str):
    from pgwarden.backup.dump import _query_failed

    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '10ms'")
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT pg_sleep(5)")
    err = _query_failed(db, info.value)
    assert err.sqlstate == "57014" and err.exit_code == 2
    assert "its query was cancelled by the server" in err.message
    assert "snapshot" not in err.message
    assert err.hint is not None and "run it again" in err.hint


def test_a_failed_checksum_query_is_reported_not_the_lost_snapshot(
    pg_cluster: Cluster, tmp_path: Path
):
    from pgwarden.errors import DatabaseError

    src = new_database(pg_cluster)
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS backup_owner")
        conn.execute("CREATE ROLE backup_owner LOGIN")
        conn.execute("GRANT EXECUTE ON FUNCTION pg_control_system() TO backup_owner")
        conn.execute("GRANT CREATE ON SCHEMA public TO backup_owner")
    owner_dsn = src.replace("user=postgres", "user=backup_owner")
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        # The checksum scan of `guarded` fails at once (its owner is subject to the policy,
        # which raises): that aborts the snapshot's transaction under pg_dump.
        conn.execute(
            "CREATE FUNCTION boom() RETURNS bool LANGUAGE plpgsql"
            " AS $$BEGIN RAISE EXCEPTION 'boom from the row policy'; END$$;"
            " CREATE TABLE guarded (id int); INSERT INTO guarded VALUES (1);"
            " CREATE POLICY p ON guarded USING (boom());"
            " ALTER TABLE guarded ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;"
        )
    with pytest.raises(DatabaseError) as info:
        api.create(owner_dsn, catalogue=tmp_path / "catalogue")
    assert "boom from the row policy" in info.value.message, info.value.message
    assert "snapshot" not in info.value.message
    assert not (tmp_path / "catalogue").exists() or not any((tmp_path / "catalogue").iterdir())
