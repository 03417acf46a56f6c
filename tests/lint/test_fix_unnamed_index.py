"""An unnamed CREATE INDEX fixed without a catalog builds no second copy on a re-run.

The server names an unnamed index itself (table_columns_idx, cut to 63 bytes), and a
second run of CREATE INDEX CONCURRENTLY ON t (c) finds that name taken and builds
another copy (..._idx1). Without a catalog, the fixed file names the build as the
server would name it when the name is free, with IF NOT EXISTS, and its header says
that a relation of that name there before the file runs makes the build be skipped.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

TABLE = "customer_subscription_billing_schedules"
WIDE = '"Überweisungsaufträge_für_abonnements_kunden_straße"'  # 2-byte characters
SETUP = f"""
CREATE TABLE {TABLE} (id bigint PRIMARY KEY, preferred_notification_channel_primary text,
                      b text, {WIDE} text);
INSERT INTO {TABLE} SELECT g, 'mail', 'b' || g, 'x' FROM generate_series(1, 100) g;
CREATE TABLE small (id bigint, c text);
"""
BUILDS = {
    "plain": "CREATE INDEX ON small (c);",
    "cut_to_63_bytes": f"CREATE INDEX ON {TABLE} (preferred_notification_channel_primary);",
    "two_byte_characters": f"CREATE INDEX ON {TABLE} ({WIDE}, b);",
    "include": f"CREATE INDEX ON {TABLE} (b) INCLUDE ({WIDE});",
    "function": f"CREATE INDEX ON {TABLE} (lower(b));",
    "expression": f"CREATE INDEX ON {TABLE} ((b || 'x'));",
    "cast": f"CREATE INDEX ON {TABLE} ((b::varchar));",
    "repeated_column": f"CREATE UNIQUE INDEX ON {TABLE} (b, b);",
    # the server numbers the second one (small_c_idx1): the file must too
    "same_columns_twice": "CREATE INDEX ON small (c);\nCREATE INDEX ON small (c) WHERE id > 10;",
    "after_an_index_of_that_name": "CREATE INDEX small_c_idx ON small (id);\n"
    "CREATE INDEX ON small (c);",
}
NAMED = "-- An unnamed CREATE INDEX or ADD CONSTRAINT below gets the name the server"


def _indexes(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT c.relname::text, regexp_replace(pg_get_indexdef(i.indexrelid), "
            "'INDEX \\S+ ON', 'INDEX ON') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relnamespace = 'public'::regnamespace AND NOT i.indisprimary ORDER BY 1"
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SETUP.encode())
    return dsn


def _run(dsn: str, text: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for s in parse(text):
            c.execute(s.text.encode())


@pytest.mark.parametrize("build", list(BUILDS))
def test_unnamed_build_fixed_without_catalog_runs_twice_as_one_copy(
    build: str, pg_any: Cluster, tmp_path: Path
) -> None:
    source = BUILDS[build] + "\n"
    f = tmp_path / "001.sql"
    f.write_text(source)
    ctx = Context(None, None, pg_any.installation.major, "x")
    plan, result = lint([f], context=ctx)
    fixes = fix_plan(plan, result)
    assert "PW101" in {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    fixed = f.read_text()
    assert NAMED in fixed
    _, after = lint([f], context=ctx)
    assert "PW101" not in {x.code for x in after.findings}, fixed

    plain = _database(pg_any)
    _run(plain, source)  # the original once: the server names the index
    dsn = _database(pg_any)
    _run(dsn, fixed)
    _run(dsn, fixed)  # the retry the header allows
    assert _indexes(dsn) == _indexes(plain), fixed  # one copy, of the server's name


def test_a_named_build_gets_no_such_header(pg_any: Cluster, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text("CREATE INDEX small_c_idx ON small (c);\n")
    plan, result = lint([f], context=Context(None, None, pg_any.installation.major, "x"))
    write_fixes(fix_plan(plan, result))
    assert NAMED not in f.read_text()


CONSTRAINTS = f"""\
CREATE TABLE fresh (id bigint NOT NULL, c text, p bigint);
ALTER TABLE fresh ADD PRIMARY KEY (id);
ALTER TABLE fresh ADD CHECK (id > 0);
ALTER TABLE fresh ADD CHECK (id > 0 AND c <> '');
ALTER TABLE fresh ADD CHECK (id < 1000000);
ALTER TABLE fresh ADD CONSTRAINT fresh_c_check CHECK (c <> 'x');
ALTER TABLE fresh ADD CHECK (c <> 'y');
ALTER TABLE fresh ADD FOREIGN KEY (p) REFERENCES fresh (id);
ALTER TABLE fresh ADD UNIQUE (c) INCLUDE (p);
ALTER TABLE {TABLE} ADD CHECK (preferred_notification_channel_primary <> '') NOT VALID;
CREATE INDEX ON small (c);
"""


def _constraints(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def test_unnamed_constraints_fixed_without_catalog_run_twice_as_one_copy(
    pg_any: Cluster, tmp_path: Path
) -> None:
    """Unnamed ADD CHECK / FOREIGN KEY / UNIQUE / PRIMARY KEY: a re-run added a second
    CHECK (_check1), foreign key and unique index, or failed on the primary key."""
    f = tmp_path / "001.sql"
    f.write_text(CONSTRAINTS)
    ctx = Context(None, None, pg_any.installation.major, "x")
    plan, result = lint([f], context=ctx)
    before = {x.code for x in result.findings}
    fixes = fix_plan(plan, result)
    claimed = {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    fixed = f.read_text()
    assert NAMED in fixed
    _, after = lint([f], context=ctx)
    codes = {x.code for x in after.findings}
    assert not codes & claimed and codes <= before, (codes, fixed)

    plain = _database(pg_any)
    _run(plain, CONSTRAINTS)
    dsn = _database(pg_any)
    _run(dsn, fixed)
    _run(dsn, fixed)  # the retry the header allows
    assert _constraints(dsn) == _constraints(plain), fixed
    assert _indexes(dsn) == _indexes(plain), fixed
