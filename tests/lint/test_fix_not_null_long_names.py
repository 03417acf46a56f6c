"""PW103's fix names its constraints as the server would keep them: at most 63 bytes.

A long table name and two long columns with a common start made the same constraint
name once the server cut both at 63 bytes: the second ADD CONSTRAINT found the first
one's name taken, so the block guarding it skipped it (before PostgreSQL 18 its column
was then set NOT NULL by the full scan under ACCESS EXCLUSIVE the fix is there to
avoid; on 18 that column stayed nullable). The names are cut as makeObjectName cuts
them (by bytes, on a character boundary, the longer of table and column first), then
made unique.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

TABLE = "customer_subscription_billing_schedules"
WIDE = "überweisungsaufträge_für_abonnements_kunden"  # 2-byte characters
COLUMNS = ("preferred_notification_channel_primary", "preferred_notification_channel_secondary")
FILES = {
    "one_statement": "ALTER TABLE {t} ALTER COLUMN {a} SET NOT NULL,\n"
    "    ALTER COLUMN {b} SET NOT NULL;\n",
    "two_statements": "ALTER TABLE {t} ALTER COLUMN {a} SET NOT NULL;\n"
    "ALTER TABLE {t} ALTER COLUMN {b} SET NOT NULL;\n",
}
_ADD = re.compile(r"ADD CONSTRAINT (\S+) ")


def _setup(table: str) -> str:
    a, b = COLUMNS
    return (
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, {a} text, {b} text);\n"
        f"INSERT INTO {table} SELECT g, 'mail', 'sms' FROM generate_series(1, 100) g;"
    )


def _state(dsn: str, table: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as c:
        return (
            c.execute(
                "SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnotnull AND attnum > 0",
                (table,),
            ).fetchone(),
            c.execute(
                "SELECT array_agg(conname::text || ' ' || contype::text ORDER BY conname) "
                "FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('c', 'n')",
                (table,),
            ).fetchone(),
        )


def _run(dsn: str, text: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in parse(text):
            c.execute(s.text.encode())


@pytest.mark.parametrize("table", [TABLE, WIDE])
@pytest.mark.parametrize("shape", list(FILES))
def test_long_names_stay_apart_after_the_servers_cut(
    shape: str, table: str, pg_any: Cluster, tmp_path: Path
) -> None:
    major = pg_any.installation.major
    a, b = COLUMNS
    source = FILES[shape].format(t=table, a=a, b=b)
    f = tmp_path / "001.sql"
    f.write_text(source)
    ctx = Context(None, None, major, "x")
    plan, result = lint([f], context=ctx)
    fixes = fix_plan(plan, result)
    assert "PW103" in {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    fixed = f.read_text()
    _, after = lint([f], context=ctx)
    assert "PW103" not in {x.code for x in after.findings}, fixed

    names = _ADD.findall(fixed)
    assert len(names) == 2, fixed
    assert all(len(n.strip('"').encode()) <= 63 for n in names), names  # as the server keeps them
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(_setup(table).encode())
        # the names as the server cuts them: still two
        kept = c.execute("SELECT count(DISTINCT n::name) FROM unnest(%s::text[]) n", (names,))
        assert kept.fetchone() == (2,), names
    plain = new_database(pg_any)
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(_setup(table).encode())
    _run(plain, source)
    _run(dsn, fixed)
    _run(dsn, fixed)  # the retry its header allows
    assert _state(dsn, table) == _state(plain, table), fixed
