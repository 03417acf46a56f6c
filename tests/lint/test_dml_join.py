"""PW142 from a snapshot's column statistics for UPDATE ... FROM / DELETE ... USING joined
on a key: every target row whose join column is set has its match; checked against the
rows the server really touches."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import lint, load_context
from pgwarden.lint.engine import lint_plan
from pgwarden.plan import SourceText, build_plan

SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, country text);
INSERT INTO customers SELECT g, 'C' || (g % 7) FROM generate_series(1, 2000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers,
                     note text);
INSERT INTO orders
SELECT g, CASE WHEN g % 2 = 0 THEN 1 + g % 2000 END, 'n' FROM generate_series(1, 120000) g;
ANALYZE;
"""
STATEMENTS = [
    "UPDATE orders o SET note = c.country FROM customers c WHERE c.id = o.customer_id",
    "UPDATE orders SET note = customers.country FROM customers"
    " WHERE orders.customer_id = customers.id",
    "DELETE FROM orders USING customers WHERE customers.id = orders.customer_id",
]


@pytest.fixture
def shop(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def _real(dsn: str, statement: str) -> int:
    with psycopg.connect(dsn) as c:
        n = c.execute(statement).rowcount
        c.rollback()
    return n


def test_join_on_a_key_touches_the_rows_whose_key_is_set(shop: str, tmp_path: Path) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(shop, sample_s=0), snap)
    f = tmp_path / "001.sql"
    f.write_text("".join(f"{s};\n" for s in STATEMENTS))
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {x.location.line: x for x in result.findings if x.code == "PW142"}
    for line, statement in enumerate(STATEMENTS, 1):
        real = _real(shop, statement)
        assert real == 60_000
        assert line in found, statement
        m = re.search(r"about ([\d,]+) of ([\d,]+) rows", found[line].message)
        assert m, found[line].message
        est = int(m.group(1).replace(",", ""))
        assert abs(est - real) <= 0.1 * real, (statement, est, real)


def test_join_with_a_limited_batch_of_an_outer_with_query_is_one_batch(shop: str) -> None:
    """`WITH batch AS (SELECT ... LIMIT n), u AS (UPDATE ... FROM batch ...)`: the UPDATE
    joins a WITH query of its statement, not a table: it touches the batch's rows (the
    server: 1,000), not every row with a match (supabase/storage's backfill loop, from the
    real-project sweep, was a PW142 error "the join ... keeps every row")."""
    batch = (
        "WITH batch AS (SELECT id FROM orders WHERE note = 'n' ORDER BY id LIMIT 1000), "
        "u AS (UPDATE orders o SET note = 'm' FROM batch b WHERE o.id = b.id RETURNING 1) "
        "SELECT count(*) FROM u"
    )
    with psycopg.connect(shop) as c:
        assert c.execute(batch).fetchone() == (1000,)
        c.rollback()
    sql = batch + ";\n"
    plan = build_plan([(SourceText("m.sql", sql), parse(sql, "m.sql"))])
    found = [f for f in lint_plan(plan).findings if f.code == "PW142"]
    assert [f.severity.value for f in found] == ["note"], [f.message for f in found]
