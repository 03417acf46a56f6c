"""PW134's table of type changes that fail without USING, checked on a live server.

For every pair of the built-in types the rule knows, `ALTER COLUMN ... TYPE` with no
USING is refused (42804, "cannot be cast automatically") exactly when the rule says so,
on every supported version; and where the rule's help says `USING c::type`, that runs.
"""

from __future__ import annotations

import psycopg
import pytest
from tests.fixtures.pg import new_database

from pgwarden.pg.cluster import Cluster
from pgwarden.rules.pw134_type_change_fails_without_using import (
    BUILT_IN,
    EXPLICIT_CASTS,
    STRINGS,
    fails_without_using,
)

SPELLED = {"varchar": "varchar(40)", "bpchar": "char(10)"}
# Added by PostgreSQL 18: explicit casts between bytea and the integer types.
BYTEA_INT_18 = {(a, b) for x in ("int2", "int4", "int8") for a, b in (("bytea", x), (x, "bytea"))}


def _refused(c: psycopg.Connection[tuple[object, ...]], sql: str) -> str | None:
    """The SQLSTATE the server refuses `sql` with, or None when it runs (rolled back)."""
    try:
        with c.transaction():
            c.execute(sql)
            raise _Undo
    except _Undo:
        return None
    except psycopg.Error as e:
        return e.sqlstate


class _Undo(Exception):
    """Rolls the savepoint back after a statement that ran."""


NO_AUTOMATIC_CAST = "42804"  # "column ... cannot be cast automatically to type ..."


def test_the_rule_flags_exactly_the_changes_the_server_refuses(pg_any: Cluster) -> None:
    dsn = new_database(pg_any)
    wrong: list[str] = []
    with psycopg.connect(dsn) as c:
        for old in sorted(BUILT_IN):
            c.execute(f"CREATE TABLE t_{old} (c {SPELLED.get(old, old)})")
            for new in sorted(BUILT_IN - {old}):
                alter = f"ALTER TABLE t_{old} ALTER COLUMN c TYPE {SPELLED.get(new, new)}"
                refused = _refused(c, alter)
                if refused not in (None, NO_AUTOMATIC_CAST):
                    wrong.append(f"{old} -> {new}: refused with {refused}")
                if (refused is not None) != fails_without_using(old, new):
                    wrong.append(f"{old} -> {new}: flagged {fails_without_using(old, new)}")
                if not fails_without_using(old, new):
                    continue
                said = old in STRINGS or (old, new) in EXPLICIT_CASTS
                exists = said or (pg_any.installation.major >= 18 and (old, new) in BYTEA_INT_18)
                if (_refused(c, f"{alter} USING c::{new}") is None) != exists:
                    wrong.append(f"{old} -> {new} USING c::{new}: said {said}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("spelled", ["integer", "uuid"])
def test_the_message_writes_the_type_as_sql_does(spelled: str) -> None:
    from pgwarden.rules.pw134_type_change_fails_without_using import _sql

    assert _sql({"integer": "int4", "uuid": "uuid"}[spelled]) == spelled
    assert _sql("varchar(36)") == "varchar(36)"
