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
