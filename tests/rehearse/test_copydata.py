"""copy_data: real rows of reference tables in the rehearsal copy, the rest synthetic.

The source has `kinds` (ids 10, 20, 30: not 1..N), which references `colors`, and
`items`, which references `kinds`. Copying `kinds` brings `colors` along; the
synthetic `items` point at the real kinds only; the probes' statements work on a
copied table; a table above the limit is refused with one message.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgwarden.errors import ConfigError, UsageError
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse import copydata, datagen
from pgwarden.settings import Settings
from tests.fixtures.pg import new_database

SCHEMA = """
CREATE TABLE colors (id int PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE kinds (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
                    color_id int NOT NULL REFERENCES colors);
CREATE TABLE items (id bigserial PRIMARY KEY, kind_id int NOT NULL REFERENCES kinds,
                    label text NOT NULL);
"""
ROWS = """
INSERT INTO colors VALUES (7, 'red'), (8, 'blue');
INSERT INTO kinds (id, code, color_id) VALUES (10, 'a', 7), (20, 'b', 8), (30, 'c', 7);
INSERT INTO items (kind_id, label) SELECT 10, 'x' || g FROM generate_series(1, 50) g;
"""


def _pair(cluster: Cluster) -> tuple[str, psycopg.Connection[Any]]:
    source = new_database(cluster)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(ROWS)
    target = psycopg.connect(new_database(cluster), autocommit=True)
    target.execute(SCHEMA)
    return source, target


def test_copied_rows_and_synthetic_children_stay_consistent(pg_cluster: Cluster) -> None:
    source, conn = _pair(pg_cluster)
    with conn:
        plan = copydata.plan_copy(source, ["kinds"], 100)
        assert [(c.name, c.rows, c.referenced_by) for c in plan] == [
            ("colors", 2, "kinds"),
            ("kinds", 3, ""),
        ]
        assert plan[0].said() == "copied 2 rows of colors from the database (referenced by kinds)"
        tables = datagen.read_tables(conn)
        copied = copydata.copy_rows(source, conn, plan, tables)
        assert [(c.name, c.rows) for c in copied] == [("colors", 2), ("kinds", 3)]
        datagen.fill(conn, tables, [datagen.TablePlan("items", 1000)])
        rows = conn.execute("SELECT id, code, color_id FROM kinds ORDER BY id").fetchall()
        assert rows == [(10, "a", 7), (20, "b", 8), (30, "c", 7)]
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (1000,)
        # every synthetic item points at a real kind, spread over all three
        used = conn.execute("SELECT array_agg(DISTINCT kind_id ORDER BY kind_id) FROM items")
        assert used.fetchone() == ([10, 20, 30],)
        # the probes' statements on a copied table: a read finds a real row, an insert works
        found = conn.execute(
            sql.SQL("SELECT code FROM kinds WHERE {}").format(
                datagen.key_lookup(tables, "kinds", 2)
            )
        ).fetchone()
        assert found == ("b",)
        conn.execute(datagen.insert_one(tables, "kinds", 1_000_001))
        conn.execute(datagen.insert_one(tables, "items", 1_000_002))
        # the sequence is past the copied keys
        assert conn.execute("INSERT INTO kinds (code, color_id) VALUES ('d', 8) RETURNING id")
        assert conn.execute("SELECT count(*) FROM kinds WHERE id <= 30").fetchone() == (3,)


def test_a_table_above_the_limit_is_refused_naming_it(pg_cluster: Cluster) -> None:
    source, conn = _pair(pg_cluster)
    conn.close()
    with pytest.raises(UsageError) as err:
        copydata.plan_copy(source, ["items"], 10)
    assert err.value.message == (
        "rehearse.copy_data: table items has 50 rows, more than rehearse.copy_max_rows (10); "
        "no rows were copied and nothing started"
    )
    with pytest.raises(UsageError, match="no table nope in "):
        copydata.plan_copy(source, ["nope"], 10)


def test_copy_settings() -> None:
    raw = {"rehearse": {"copy_data": ["kinds"], "copy_max_rows": 5}}
    assert copydata.copy_settings(Settings(raw=raw)) == copydata.CopySettings(("kinds",), 5)
    assert copydata.copy_settings(Settings()) == copydata.CopySettings(None, 100_000)
    with pytest.raises(ConfigError, match="copy_data must be a list of table names"):
        copydata.copy_settings(Settings(raw={"rehearse": {"copy_data": "kinds"}}))
