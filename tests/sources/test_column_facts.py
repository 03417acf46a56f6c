"""`ColumnFact`s through `build_plan`: where they apply and what they never override.

A framework's word on a column (Alembic's existing_type, Django's old field) is taken
before the statement it precedes, only where neither the catalog nor the plan says
anything about the column. No database: the verdict is the lock model's.
"""

from __future__ import annotations

import pytest

from pgwarden.analysis.catalog import Catalog, Column, Relation
from pgwarden.analysis.inplan import ColumnFact, fact_type
from pgwarden.analysis.parse import parse
from pgwarden.plan import Plan, SourceText, build_plan


@pytest.mark.parametrize(
    ("spelled", "normal"),
    [
        ("VARCHAR(100)", "varchar(100)"),  # SQLAlchemy
        ("INTEGER", "int4"),
        ("NUMERIC(10, 2)", "numeric(10,2)"),
        ("TIMESTAMP WITHOUT TIME ZONE", "timestamp"),
        ("timestamp with time zone", "timestamptz"),  # Django
        ("serial", "int4"),
        ("double precision", "float8"),
        ("varchar(20)[]", "varchar(20)[]"),
        ("geometry(POINT,4326)", ""),  # typmods that are not numbers: not comparable
        ("int; DROP TABLE t", ""),  # not one type
    ],
)
def test_fact_type_normalises_framework_spellings(spelled: str, normal: str) -> None:
    assert fact_type(spelled) == normal


def _plan(sql: str, *facts: ColumnFact, catalog: Catalog | None = None) -> Plan:
    return build_plan([(SourceText("m.sql", sql, facts), parse(sql))], catalog=catalog)


def _fact(column: str, typ: str, before: int, table: str = "t") -> ColumnFact:
    return ColumnFact(table, None, column, typ, None, before)


def test_a_fact_applies_from_the_statement_it_precedes() -> None:
    sql = "ALTER TABLE t ALTER c TYPE varchar(20);\nALTER TABLE t ALTER d TYPE varchar(20);"
    plan = _plan(sql, _fact("d", "varchar(10)", 1), _fact("c", "varchar(10)", 1))
    assert plan.steps[0].effects.rewrites == ("t",)  # c: its fact comes after
    assert plan.steps[1].effects.rewrites == ()  # d: varchar(10) -> varchar(20), in place


def test_the_plan_and_the_catalog_win_over_a_fact() -> None:
    # the plan typed t.c (varchar(5) -> int4 rewrites, though the fact says varchar(10))
    sql = "ALTER TABLE t ALTER c TYPE varchar(5);\nALTER TABLE t ALTER c TYPE int;"
    assert _plan(sql, _fact("c", "int4", 1)).steps[1].effects.rewrites == ("t",)
    # a table the catalog shows is known whole: its column's type, not the fact's
    rel = Relation("t", "public", "t", "r", columns=(Column("c", "text"),))
    sql = "ALTER TABLE t ALTER c TYPE varchar(20);"
    got = _plan(sql, _fact("c", "varchar(10)", 0), catalog=Catalog((rel,)))
    assert got.steps[0].effects.rewrites == ("t",)
    # the catalog does not show u: the fact is taken for it
    got = _plan("ALTER TABLE u ALTER c TYPE varchar(20);", _fact("c", "varchar(10)", 0, "u"),
                catalog=Catalog((rel,)))  # fmt: skip
    assert got.steps[0].effects.rewrites == ()
