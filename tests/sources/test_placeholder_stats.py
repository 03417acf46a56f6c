"""A Flyway/Liquibase placeholder used as a table's schema (`${schema}.orders`) is sized
from a stats snapshot when the snapshot has exactly one table of that name, and the
finding says which schema it took; with that name in several schemas it stays unknown
and says why. Before, such a table was never found in the snapshot: size unknown,
assumed large and busy, however small the table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from pgwarden.commands import lint, load_context

SCHEMA = """
CREATE TABLE orders (id bigint PRIMARY KEY, x int);
INSERT INTO orders SELECT g, g % 7 FROM generate_series(1, 3000) g;
CREATE SCHEMA sales;
CREATE TABLE items (id bigint PRIMARY KEY, x int);
CREATE TABLE sales.items (id bigint PRIMARY KEY, x int);
CREATE SCHEMA "Books";
CREATE TABLE "Books"."Ledger" (id bigint PRIMARY KEY, x int);
INSERT INTO "Books"."Ledger" SELECT g, g % 7 FROM generate_series(1, 2000) g;
ANALYZE;
"""


@pytest.fixture
def shop(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def test_placeholder_schema_resolves_to_the_only_table_of_that_name(
    shop: str, tmp_path: Path
) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(shop, sample_s=0), snap)
    f = tmp_path / "V2__x.sql"
    f.write_text(
        'CREATE INDEX orders_x_idx ON "${schema}".orders (x);\n'
        "CREATE INDEX orders_id_x_idx ON ${schema}.orders (id, x);\n"
        "CREATE INDEX items_x_idx ON ${schema}.items (x);\n"
        'CREATE INDEX ledger_x_idx ON ${flyway:defaultSchema}."Ledger" (x);\n'
        "CREATE INDEX nowhere_x_idx ON ${schema}.nowhere (x);\n"
        "CREATE INDEX orders_x2_idx ON :schema.orders (x);\n"  # a psql variable
        'CREATE INDEX orders_x3_idx ON {{ index .Options "Namespace" }}.orders (x);\n'  # Go
    )
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {x.location.line: x.message for x in result.findings if x.code == "PW101"}
    for line in (1, 2):
        assert "3k rows" in found[line], found[line]
        assert "${schema} taken as public" in found[line], found[line]
    assert "size unknown" in found[3], found[3]
    assert "public, sales" in found[3], found[3]  # why: the name is in both
    assert "2k rows" in found[4], found[4]
    assert '${flyway:defaultSchema} taken as "Books"' in found[4], found[4]
    assert "size unknown (table not in the stats snapshot)" in found[5], found[5]
    assert "3k rows" in found[6] and ":schema taken as public" in found[6], found[6]
    assert '{{ index .Options "Namespace" }} taken as public' in found[7], found[7]
    assert "3k rows" in found[7], found[7]
