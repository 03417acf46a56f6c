"""The plan remembers what it created: the lock model with the in-plan catalog overlay
against live servers 15-18.

Each case: a setup, earlier statements of the plan, then one statement. The earlier
statements run (autocommit) on a fresh schema; the last one is observed in a
transaction (pg_locks, relfilenodes, scan counters) and rolled back. The model sees
the earlier statements only through `InPlan`:

- with the setup's catalog, it must predict what it predicts with the real catalog
  read after the earlier statements (locks, rewrites, scans), and what the server did;
- from the SQL alone (no catalog), the rewrites and scans must be the server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from pgwarden.analysis import observe as live
from pgwarden.analysis.effects import Effects
from pgwarden.analysis.inplan import InPlan
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

ROWS = "INSERT INTO h (id) SELECT g FROM generate_series(1, 20) g;\n"
H = "CREATE TABLE h (id int PRIMARY KEY, note text);\n" + ROWS
P = H + "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1);\n"


@dataclass(frozen=True)
class InPlanCase:
    id: str
    setup: str
    earlier: str
    sql: str
    alone: bool = True  # also checked from the SQL alone (no catalog)
    alone_locks: bool = False  # ... and its locks too (those of the table and the index)


CASES = [
    InPlanCase(
        "cidr_inet", H, 'ALTER TABLE h ADD "ip" cidr;', 'ALTER TABLE h ALTER "ip" TYPE inet'
    ),
    InPlanCase(
        "varchar_widen",
        H,
        "ALTER TABLE h ADD v varchar(20);",
        "ALTER TABLE h ALTER v TYPE varchar(40)",
    ),
    InPlanCase(
        "varchar_narrow",
        H,
        "ALTER TABLE h ADD v varchar(20);",
        "ALTER TABLE h ALTER v TYPE varchar(5)",
    ),
    InPlanCase(
        "varchar_text", H, "ALTER TABLE h ADD v varchar(20);", "ALTER TABLE h ALTER v TYPE text"
    ),
    InPlanCase(
        "text_varchar", H, "ALTER TABLE h ADD v text;", "ALTER TABLE h ALTER v TYPE varchar"
    ),
    InPlanCase(
        "numeric_up",
        H,
        "ALTER TABLE h ADD n numeric(10, 2);",
        "ALTER TABLE h ALTER n TYPE numeric(14, 2)",
    ),
    InPlanCase(
        "numeric_scale",
        H,
        "ALTER TABLE h ADD n numeric(10, 2);",
        "ALTER TABLE h ALTER n TYPE numeric(10, 3)",
    ),
    InPlanCase(
        "timestamp_precision_up",
        H,
        "ALTER TABLE h ADD at timestamp(3);",
        "ALTER TABLE h ALTER at TYPE timestamp(6)",
    ),
    InPlanCase("int_bigint", H, "ALTER TABLE h ADD c int;", "ALTER TABLE h ALTER c TYPE bigint"),
    InPlanCase(
        "type_changed_twice",
        H,
        "ALTER TABLE h ADD c int; ALTER TABLE h ALTER c TYPE bigint;",
        "ALTER TABLE h ALTER c TYPE int8",
    ),
    InPlanCase(
        "renamed_column",
        H,
        "ALTER TABLE h ADD ip cidr; ALTER TABLE h RENAME ip TO addr;",
        "ALTER TABLE h ALTER addr TYPE inet",
    ),
    InPlanCase(
        "indexed_varchar_text",
        H,
        "ALTER TABLE h ADD v varchar(20); CREATE INDEX h_v_idx ON h (v);",
        "ALTER TABLE h ALTER v TYPE text",
    ),
    InPlanCase(
        "created_table_cidr_inet",
        "",
        "CREATE TABLE n (id int PRIMARY KEY, ip cidr); INSERT INTO n VALUES (1, '10.0.0.0/8');",
        "ALTER TABLE n ALTER ip TYPE inet",
    ),
    InPlanCase(
        "set_not_null_after_valid_check",
        H,
        "ALTER TABLE h ADD CONSTRAINT h_note_nn CHECK (note IS NOT NULL) NOT VALID;"
        " UPDATE h SET note = 'x'; ALTER TABLE h VALIDATE CONSTRAINT h_note_nn;",
        "ALTER TABLE h ALTER note SET NOT NULL",
    ),
    InPlanCase(
        "set_not_null_after_not_valid_check",
        H + "UPDATE h SET note = 'x';\n",
        "ALTER TABLE h ADD CONSTRAINT h_note_nn CHECK (note IS NOT NULL) NOT VALID;",
        "ALTER TABLE h ALTER note SET NOT NULL",
    ),
    InPlanCase(
        "set_not_null_added_not_null",
        H,
        "ALTER TABLE h ADD c int NOT NULL DEFAULT 0;",
        "ALTER TABLE h ALTER c SET NOT NULL",
    ),
    InPlanCase(
        "pk_using_new_index_checked",
        "CREATE TABLE k (v int); INSERT INTO k VALUES (1), (2);\n",
        "ALTER TABLE k ADD CONSTRAINT k_v_nn CHECK (v IS NOT NULL);"
        " CREATE UNIQUE INDEX k_v_uq ON k (v);",
        "ALTER TABLE k ADD CONSTRAINT k_pk PRIMARY KEY USING INDEX k_v_uq",
    ),
    InPlanCase(
        "pk_using_new_index_nullable",
        "CREATE TABLE k (v int); INSERT INTO k VALUES (1), (2);\n",
        "CREATE UNIQUE INDEX k_v_uq ON k (v);",
        "ALTER TABLE k ADD CONSTRAINT k_pk PRIMARY KEY USING INDEX k_v_uq",
        alone=False,  # whether v is NOT NULL is not known: no scan assumed, as without a plan
    ),
    InPlanCase(
        "validate_new_fk",
        P + "ALTER TABLE h ADD p_id int; UPDATE h SET p_id = 1;\n",
        "ALTER TABLE h ADD CONSTRAINT h_p_fk FOREIGN KEY (p_id) REFERENCES p (id) NOT VALID;",
        "ALTER TABLE h VALIDATE CONSTRAINT h_p_fk",
    ),
    InPlanCase(
        "validate_new_check",
        H,
        "ALTER TABLE h ADD CONSTRAINT h_id_pos CHECK (id > 0) NOT VALID;",
        "ALTER TABLE h VALIDATE CONSTRAINT h_id_pos",
    ),
    # DROP INDEX of an index the plan created: its table is known (ACCESS EXCLUSIVE)
    InPlanCase(
        "drop_index_created_in_plan",
        H,
        "CREATE INDEX h_note_idx ON h (note);",
        "DROP INDEX h_note_idx",
        alone_locks=True,
    ),
    InPlanCase(
        "drop_index_if_exists_created_in_plan",
        H,
        "CREATE INDEX ON h (note);",
        "DROP INDEX IF EXISTS h_note_idx",
        alone_locks=True,
    ),
    # SET NOT NULL again (synapse's 74/03 after 73/07): the column is NOT NULL, no scan
    InPlanCase(
        "set_not_null_again",
        H,
        "UPDATE h SET note = 'x'; ALTER TABLE h ALTER note SET NOT NULL;",
        "ALTER TABLE h ALTER note SET NOT NULL",
    ),
    # Foreign keys the plan made, dropped: the referenced table's triggers go too, under
    # ACCESS EXCLUSIVE (Lemmy's column-level REFERENCES, flipt's ALTER-added key: the sweep)
    InPlanCase(
        "column_fk_dropped",
        P,
        "CREATE TABLE cs (id int, p_id int CONSTRAINT cs_fk REFERENCES p);",
        "ALTER TABLE cs DROP CONSTRAINT cs_fk",
        alone_locks=True,
    ),
    InPlanCase(
        "table_with_column_fk_dropped",
        P,
        "CREATE TABLE cs (id int, p_id int REFERENCES p);",
        "DROP TABLE cs",
        alone_locks=True,
    ),
    InPlanCase(
        "added_fk_dropped",
        P,
        "ALTER TABLE h ADD CONSTRAINT h_p_fk FOREIGN KEY (id) REFERENCES p (id) NOT VALID;",
        "ALTER TABLE h DROP CONSTRAINT h_p_fk",
        alone_locks=True,
    ),
    InPlanCase(
        "add_column_if_not_exists_again",
        H,
        "ALTER TABLE h ADD c serial;",
        "ALTER TABLE h ADD COLUMN IF NOT EXISTS c serial",
    ),
]

_databases: dict[int, str] = {}


@pytest.fixture
def conn(pg_any: Cluster) -> Any:
    major = pg_any.installation.major
    if major not in _databases:
        _databases[major] = new_database(pg_any)
    with psycopg.connect(_databases[major], autocommit=True) as c:
        yield major, c


def _pairs(effects: Effects) -> set[tuple[str, str]]:
    created = set(effects.creates)
    return {(lk.relation, lk.mode.pg_name) for lk in effects.locks if lk.relation not in created}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_inplan_overlay_matches_server(case: InPlanCase, conn: Any) -> None:
    major, c = conn
    schema = f"ip_{case.id}"
    try:
        base = live.fresh_schema(c, schema, case.setup)
        earlier = parse(case.earlier)
        (last,) = parse(case.sql)
        real = live.catalog_after(c, earlier)
        for stmt in earlier:
            c.execute(stmt.text.encode())
        observed = live.observe_in_transaction(c, [last.text])
        for catalog in (base, None):
            inplan = InPlan(catalog)
            for stmt in earlier:
                inplan.observe(stmt.tree)
            model = analyse(last.tree, catalog=catalog, server_version=major, inplan=inplan)
            if catalog is None:
                if case.alone and "AlterTableStmt" in last.tree:
                    # the table's indexes are not known from the SQL alone
                    table = last.tree["AlterTableStmt"]["relation"]["relname"]
                    assert (table in model.rewrites) == (table in observed.rewrites)
                    assert set(model.scans) == observed.scans
                if case.alone_locks:
                    assert _pairs(model) == observed.locks
                continue
            assert set(model.rewrites) == observed.rewrites
            assert set(model.scans) == observed.scans
            if catalog is not None:
                truth = analyse(last.tree, catalog=real, server_version=major)
                assert _pairs(model) == _pairs(truth) == observed.locks
                assert set(truth.rewrites) == observed.rewrites
    finally:
        live.drop_schema(c, schema)
