"""What the model calls non-transactional is refused by the server inside BEGIN, and vice versa."""

from __future__ import annotations

import psycopg
import pytest

from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse_one
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

STATEMENTS = [
    "CREATE DATABASE pgw_tx_probe",
    "DROP DATABASE IF EXISTS pgw_tx_probe",
    "REINDEX SCHEMA public",
    "REINDEX DATABASE {db}",
    "REINDEX SYSTEM {db}",
    "VACUUM t",
    "CREATE INDEX CONCURRENTLY t_a_idx ON t (a)",
    "REINDEX TABLE t",
    "ALTER TABLE t ADD COLUMN b int",
    "ALTER SYSTEM RESET pgw_tx_probe.x",
    "CREATE TABLESPACE pgw_tx_probe LOCATION '/nonexistent/pgw_tx_probe'",
    "DROP TABLESPACE IF EXISTS pgw_tx_probe",
    "DISCARD ALL",
    "DISCARD PLANS",
    "CREATE SUBSCRIPTION pgw_tx_probe CONNECTION 'dbname=nowhere' PUBLICATION p",
    "CREATE SUBSCRIPTION pgw_tx_probe CONNECTION 'dbname=nowhere' PUBLICATION p\n"
    "    WITH (connect = false)",
    "CREATE SUBSCRIPTION pgw_tx_probe CONNECTION 'dbname=nowhere' PUBLICATION p\n"
    "    WITH (connect = false, create_slot = false)",
]


@pytest.mark.parametrize("template", STATEMENTS)
def test_transaction_block(pg_any: Cluster, template: str):
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a int)")
        db = conn.info.dbname
        sql = template.format(db=db)
        predicted = analyse(parse_one(sql), server_version=pg_any.installation.major)
        conn.execute("BEGIN")
        try:
            conn.execute(sql)
            refused = False
        except psycopg.errors.ActiveSqlTransaction:
            refused = True
        finally:
            conn.execute("ROLLBACK")
    assert refused is (not predicted.transactional), sql


def test_dropping_a_subscription_with_a_slot(pg_any: Cluster) -> None:
    """DROP SUBSCRIPTION drops its replication slot (unless slot_name is NONE, which the
    statement does not say): the model takes it as refused in a transaction block."""
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE SUBSCRIPTION pgw_tx_probe CONNECTION 'dbname=nowhere' PUBLICATION p "
            "WITH (connect = false)"
        )
        sql = "DROP SUBSCRIPTION pgw_tx_probe"
        assert analyse(parse_one(sql)).transactional is False
        conn.execute("BEGIN")
        try:
            with pytest.raises(psycopg.errors.ActiveSqlTransaction):
                conn.execute(sql)
        finally:
            conn.execute("ROLLBACK")
        conn.execute("ALTER SUBSCRIPTION pgw_tx_probe SET (slot_name = NONE)")
        conn.execute(sql)  # a database left with a subscription could not be dropped
