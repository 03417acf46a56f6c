"""PW134's table of type changes that fail without USING, checked on a live server.

For every string type and every target the rule lists, `ALTER COLUMN ... TYPE` with no
USING is refused (42804, "cannot be cast automatically"), on every supported version;
and a change the rule does not flag (text -> varchar, integer -> text) runs.
"""

from __future__ import annotations

import psycopg
import pytest
from tests.fixtures.pg import new_database

from pgwarden.rules.pw134_type_change_fails_without_using import NO_CAST_FROM_STRING, STRINGS

SPELLED = {"varchar": "varchar(40)", "bpchar": "char(10)", "text": "text"}


def test_every_listed_change_is_refused_and_an_unlisted_one_runs(pg_any) -> None:
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        for source in sorted(STRINGS):
            for target in sorted(NO_CAST_FROM_STRING):
                c.execute("DROP TABLE IF EXISTS t")
                c.execute(f"CREATE TABLE t (c {SPELLED[source]})")
                alter = f"ALTER TABLE t ALTER COLUMN c TYPE {target}"
                with pytest.raises(psycopg.errors.DatatypeMismatch, match="cast automatically"):
                    c.execute(alter)
        c.execute("DROP TABLE IF EXISTS t")
        c.execute("CREATE TABLE t (c text, n integer)")
        c.execute("ALTER TABLE t ALTER COLUMN c TYPE varchar(20), ALTER COLUMN n TYPE text")


@pytest.mark.parametrize("spelled", ["integer", "uuid"])
def test_the_message_writes_the_type_as_sql_does(spelled: str) -> None:
    from pgwarden.rules.pw134_type_change_fails_without_using import _sql

    assert _sql({"integer": "int4", "uuid": "uuid"}[spelled]) == spelled
    assert _sql("varchar(36)") == "varchar(36)"
