"""builtin_functions.txt (the lock model's volatility of built-in functions) against
pg_proc of every server version found."""

from __future__ import annotations

import psycopg
import pytest

from pgwarden.analysis.locks_altertable import builtin_volatility, volatile
from pgwarden.analysis.parse import parse_one
from pgwarden.pg.cluster import Cluster

_QUERY = """
SELECT proname, bool_or(provolatile = 'v')
FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace GROUP BY proname
"""


def test_volatility_table_matches_the_server(pg_any: Cluster) -> None:
    table = builtin_volatility()
    with psycopg.connect(pg_any.dsn()) as conn:
        server: dict[str, bool] = dict(conn.execute(_QUERY).fetchall())
    missing = sorted(set(server) - set(table))
    assert missing == [], "rerun scripts/gen_builtin_functions"
    # A name volatile in any overload on this server must be volatile in the table.
    wrong = sorted(n for n, is_volatile in server.items() if is_volatile and table[n] != "v")
    assert wrong == []
    assert len(server) > 2000


def _default(sql: str) -> object:
    tree = parse_one(f"ALTER TABLE t ADD COLUMN c text DEFAULT {sql}")
    cmd = tree["AlterTableStmt"]["cmds"][0]["AlterTableCmd"]
    return cmd["def"]["ColumnDef"]["constraints"][0]["Constraint"]["raw_expr"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("now()", False),
        ("timezone('utc', now())", False),
        ("pg_catalog.date_trunc('day', now())", False),
        ("lower('X') || 'y'", False),
        ("random()", True),
        ("md5(random()::text)", True),
        ("nextval('s')", True),
        ("uuid_generate_v4()", True),  # not built in (an extension's): assumed volatile
        ("public.lower('x')", True),  # a user's function of the same name
    ],
)
def test_volatile_defaults(expr: str, expected: bool) -> None:
    assert volatile(_default(expr)) is expected
