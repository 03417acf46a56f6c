"""PW103 and ADD PRIMARY KEY USING INDEX, with the catalog of a live server (15-18).

A primary key sets NOT NULL on its columns; over a nullable column the server scans
the table for NULLs, unless a valid CHECK (col IS NOT NULL) proves it (then no scan,
checked in tests/analysis/lock_cases.py). PW103 follows the server.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from tests.fixtures.pg import new_database

from pgwarden.analysis import observe as live
from pgwarden.analysis.parse import parse
from pgwarden.lint.engine import lint_plan
from pgwarden.pg.cluster import Cluster
from pgwarden.plan import SourceText, build_plan

SETUP = (
    "CREATE TABLE k (v int); INSERT INTO k VALUES (1), (2); CREATE UNIQUE INDEX k_v_uq ON k (v);"
)
CHECK = "ALTER TABLE k ADD CONSTRAINT k_v_nn CHECK (v IS NOT NULL);"
PK = "ALTER TABLE k ADD CONSTRAINT k_pk PRIMARY KEY USING INDEX k_v_uq;"


@pytest.fixture
def conn(pg_any: Cluster) -> Any:
    with psycopg.connect(new_database(pg_any), autocommit=True) as c:
        yield pg_any.installation.major, c


def _pw103(major: int, catalog: Any, sql: str) -> list[str]:
    plan = build_plan(
        [(SourceText("m.sql", sql), parse(sql))], catalog=catalog, server_version=major
    )
    return [f.message for f in lint_plan(plan).findings if f.code == "PW103"]


@pytest.mark.parametrize("checked", [False, True], ids=["nullable", "checked"])
def test_pk_using_index_follows_the_server(conn: Any, checked: bool) -> None:
    major, c = conn
    try:
        catalog = live.fresh_schema(c, "pk_catalog", SETUP + (CHECK if checked else ""))
        observed = live.observe_in_transaction(c, [PK])
        assert ("k" in observed.scans) is not checked  # what the server did
        assert bool(_pw103(major, catalog, PK)) is not checked
    finally:
        live.drop_schema(c, "pk_catalog")


def test_pk_using_index_after_check_in_the_plan(conn: Any) -> None:
    """The CHECK and the index made earlier in the same plan prove it too."""
    major, c = conn
    try:
        catalog = live.fresh_schema(c, "pk_inplan", "CREATE TABLE k (v int);")
        sql = "CREATE UNIQUE INDEX k_v_uq ON k (v);\n" + CHECK + "\n" + PK
        assert _pw103(major, catalog, sql) == []
        assert _pw103(major, catalog, "CREATE UNIQUE INDEX k_v_uq ON k (v);\n" + PK)
    finally:
        live.drop_schema(c, "pk_inplan")
