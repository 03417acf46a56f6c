"""PW101 on a materialized view, with a live catalog: the build's SHARE lock holds back
refreshes only (a matview takes no writes; reads go on), so it is a warning, not the
error a table's index build is. Checked against the server: a read of the view runs
while the build holds its lock, a REFRESH waits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import Snapshot, save_snapshot, take_snapshot
from pgwarden.commands import lint, load_context
from pgwarden.findings import Severity

SCHEMA = """
CREATE TABLE sales (id bigint PRIMARY KEY, product text, qty int);
INSERT INTO sales SELECT g, 'p' || (g % 300), g % 7 FROM generate_series(1, 30000) g;
CREATE MATERIALIZED VIEW product_totals AS
  SELECT product, sum(qty) AS total FROM sales GROUP BY product;
ANALYZE;
"""


def _scaled(snap: Snapshot) -> Snapshot:
    """The same snapshot with every table 10,000 times larger and busy."""
    tables = {
        k: replace(
            t,
            rows=t.rows * 10_000,
            total_bytes=t.total_bytes * 10_000,
            table_bytes=t.table_bytes * 10_000,
            writes_per_s=100.0,
        )
        for k, t in snap.stats.tables.items()
    }
    return replace(snap, stats=replace(snap.stats, tables=tables))


@pytest.fixture
def shop(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def test_index_on_a_matview_is_a_warning_and_on_a_table_an_error(shop: str, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(
        "CREATE INDEX product_totals_total_idx ON product_totals (total);\n"
        "CREATE INDEX sales_product_idx ON sales (product);\n"
    )
    _, result = lint([f], context=load_context(database_url=shop))
    found = {x.location.line: x for x in result.findings if x.code == "PW101"}
    assert found[1].severity is not Severity.ERROR, found[1].message
    assert "REFRESH" in found[1].message and "reads go on" in found[1].message
    assert "materialized" not in found[2].message
    # Sized as production would be, the table's build is an error, the view's a warning.
    snap = tmp_path / "stats.json"
    save_snapshot(_scaled(take_snapshot(shop, sample_s=0)), snap)
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {x.location.line: x for x in result.findings if x.code == "PW101"}
    assert found[1].severity is Severity.WARNING, found[1].message
    assert found[2].severity is Severity.ERROR, found[2].message

    with psycopg.connect(shop) as builder, psycopg.connect(shop, autocommit=True) as other:
        builder.execute("CREATE INDEX product_totals_total_idx ON product_totals (total)")
        other.execute("SET lock_timeout = '200ms'")
        assert other.execute("SELECT count(*) FROM product_totals").fetchone() == (300,)
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("REFRESH MATERIALIZED VIEW product_totals")
        builder.rollback()
