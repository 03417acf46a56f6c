"""A statement `lint --fix` takes out of its transaction never runs before what it uses.

A CREATE INDEX fixed into CREATE INDEX CONCURRENTLY cannot run in a transaction block:
the rewrite moves it before its transaction, unless an earlier statement of that
transaction could be something it needs (an extension, function, collation, schema or
type it uses, a rename to the names it uses, the DELETE that makes a unique index
possible, a DROP of an index of its name): then the transaction is split at its place
(what came before commits, the build runs, the rest follows). Each shape is fixed, run
on a live server twice and leaves its index built and valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint, load_plan
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.lint.rewrite import rewrite_plan
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

SETUP = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                        tags text NOT NULL);
INSERT INTO customers (id, name, email, tags)
SELECT g, 'customer ' || g, 'c' || g % 50 || '@example.org', 'a,b' FROM generate_series(1, 200) g;
CREATE INDEX customers_name_idx ON customers (name);
"""


@dataclass(frozen=True)
class Shape:
    name: str
    before: str  # the transaction's statements before the build
    build: str  # the CREATE INDEX the fix makes concurrent
    index: str  # the index the fixed file must leave built and valid
    definition: str = ""  # a part of its pg_get_indexdef
    extension: str = ""  # an extension the server must have


RERUNNABLE = [
    Shape(
        "extension",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
        "CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);",
        "customers_name_trgm",
        extension="pg_trgm",
    ),
    Shape(
        "function",
        "CREATE OR REPLACE FUNCTION email_domain(e text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT split_part(e, '@', 2) $$;",
        "CREATE INDEX customers_domain_idx ON customers ((email_domain(email)));",
        "customers_domain_idx",
    ),
    Shape(
        "table_rename",
        "ALTER TABLE customers RENAME TO clients;",
        "CREATE INDEX clients_email_idx ON clients (email);",
        "clients_email_idx",
    ),
    Shape(
        "column_rename",
        "ALTER TABLE customers RENAME COLUMN email TO mail;",
        "CREATE INDEX customers_mail_idx ON customers (mail);",
        "customers_mail_idx",
    ),
    Shape(
        "dedupe",
        "DELETE FROM customers a USING customers b WHERE a.email = b.email AND a.id > b.id;",
        "CREATE UNIQUE INDEX customers_email_key ON customers (email);",
        "customers_email_key",
    ),
    Shape(
        "collation",
        'CREATE COLLATION IF NOT EXISTS bytewise FROM "C";',
        "CREATE INDEX customers_name_bytewise_idx ON customers (name COLLATE bytewise);",
        "customers_name_bytewise_idx",
    ),
    Shape(
        "schema",
        "CREATE SCHEMA IF NOT EXISTS util;\n"
        "CREATE OR REPLACE FUNCTION util.mailbox(e text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT split_part(e, '@', 1) $$;",
        "CREATE INDEX customers_mailbox_idx ON customers ((util.mailbox(email)));",
        "customers_mailbox_idx",
    ),
    Shape(
        "drop_same_name",
        "-- pgwarden: ignore PW207 replaced by the build below\n"
        "DROP INDEX IF EXISTS customers_name_idx;",
        "CREATE INDEX customers_name_idx ON customers (lower(name));",
        "customers_name_idx",
        definition="lower(name)",
    ),
]
# Shapes whose own statement the fixed file guards (CREATE TYPE has no IF NOT EXISTS, the
# conversion of ALTER ... TYPE ... USING would run on its own output, SET SCHEMA fails once
# done): a block skips it when it ran.
RERUNNABLE += [
    Shape(
        "type",
        "CREATE TYPE contact AS (name text, email text);",
        "CREATE INDEX customers_contact_idx ON customers ((ROW(name, email)::contact));",
        "customers_contact_idx",
    ),
    Shape(
        "alter_type",
        "ALTER TABLE customers ALTER COLUMN tags TYPE text[] USING string_to_array(tags, ',');",
        "CREATE INDEX customers_tags_idx ON customers USING gin (tags);",
        "customers_tags_idx",
    ),
    Shape(
        "set_schema",
        "CREATE SCHEMA IF NOT EXISTS crm;\nALTER TABLE customers SET SCHEMA crm;",
        "CREATE INDEX customers_email_idx ON crm.customers (email);",
        "crm.customers_email_idx",
    ),
]


def _source(shape: Shape) -> str:
    return f"BEGIN;\n{shape.before}\n{shape.build}\nCOMMIT;\n"


def _fixed(tmp_path: Path, major: int, shape: Shape) -> list[str]:
    """`pgwarden lint --fix` of the shape's file (no stats: the table is assumed large):
    the fixed file's statements."""
    f = tmp_path / "001.sql"
    f.write_text(_source(shape))
    ctx = Context(None, None, major, "x")
    plan, result = lint([f], context=ctx)
    fixes = fix_plan(plan, result)
    assert "PW101" in {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    return [s.text for s in parse(f.read_text())]


def _database(cluster: Cluster, shape: Shape) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        if (
            shape.extension
            and not c.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = %s", (shape.extension,)
            ).fetchone()
        ):
            pytest.skip(f"PostgreSQL {cluster.installation.major} has no {shape.extension}")
        c.execute(SETUP.encode())
    return dsn


def _run(dsn: str, stmts: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts:
            c.execute(q.encode())


def _valid(dsn: str, index: str) -> tuple[bool, str] | None:
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indexrelid = to_regclass(%s)",
            (index,),
        ).fetchone()
    return (bool(row[0]), str(row[1])) if row else None


def _check(dsn: str, shape: Shape) -> None:
    got = _valid(dsn, shape.index)
    assert got is not None, f"{shape.index} was not built"
    valid, definition = got
    assert valid, definition
    assert shape.definition in definition


@pytest.mark.parametrize("shape", RERUNNABLE, ids=[s.name for s in RERUNNABLE])
def test_fixed_build_runs_after_what_it_needs_and_runs_twice(
    shape: Shape, pg_any: Cluster, tmp_path: Path
) -> None:
    dsn = _database(pg_any, shape)
    stmts = _fixed(tmp_path, pg_any.installation.major, shape)
    _run(dsn, stmts)
    _check(dsn, shape)
    _run(dsn, stmts)  # the retry the fixed file's header allows
    _check(dsn, shape)


# The rewrite alone (no server): where the concurrent build goes, after each kind of
# earlier statement of its transaction. `after`: the build must follow it (the
# transaction is split there); `before`: it cannot matter, the build moves ahead of the
# transaction as before.
AFTER = {
    "search_path": "SET search_path = crm, public;",
    "role": "SET ROLE migrator;",
    "add_check": "ALTER TABLE customers ADD CONSTRAINT c_id CHECK (id > 0) NOT VALID;",
    "set_storage": "ALTER TABLE customers SET (fillfactor = 70);",
    "column_type": "ALTER TABLE customers ALTER COLUMN name TYPE varchar(200);",
    "update": "UPDATE customers SET email = lower(email) WHERE id < 10;",
    # A cascading foreign key or a trigger may write the build's table.
    "other_table_write": "DELETE FROM accounts WHERE closed;",
    "insert": "INSERT INTO customers (id, name, email) VALUES (0, 'x', 'x@example.org');",
    "domain": "CREATE DOMAIN mail AS text CHECK (VALUE LIKE '%@%');",
    "sequence": "CREATE SEQUENCE customers_email_idx;",
    "view": "CREATE VIEW customers_email_idx AS SELECT 1;",
    "enum_value": "ALTER TYPE tier ADD VALUE IF NOT EXISTS 'gold';",
    "extension_update": "ALTER EXTENSION pg_trgm UPDATE;",
    "operator_class": "CREATE OPERATOR CLASS text_ops2 FOR TYPE text USING btree AS OPERATOR 1 <;",
    "do_block": "DO $$ BEGIN PERFORM 1; END $$;",
    "call": "CALL prepare_customers();",
    "select_function": "SELECT partman.create_parent('public.customers');",
    "set_config": "SELECT set_config('search_path', 'crm', false);",
    "index_rename": "ALTER INDEX customers_name_idx RENAME TO customers_email_idx;",
    "same_name_other_table": "-- pgwarden: ignore PW101 a small table\n"
    "CREATE INDEX customers_email_idx ON settings (key);",
    "table_created_as_the_name": "CREATE TABLE customers_email_idx (id int);",
}
BEFORE = {
    "nothing": "",
    "lock_timeout": "SET LOCAL lock_timeout = '1s';",
    "other_table_read": "SELECT count(*) FROM settings;",
    "other_table_alter": "ALTER TABLE settings ADD COLUMN note text;",
    "unrelated_column": "ALTER TABLE customers ADD COLUMN note text;",
    "comment": "COMMENT ON TABLE customers IS 'people who buy';",
    "other_table_created": "CREATE TABLE audit_log (id bigint, at timestamptz);",
    "another_build": "CREATE INDEX customers_name2_idx ON customers (name);",
}
BUILD = "CREATE INDEX customers_email_idx ON customers (email);"


def _bare(sql: str) -> str:
    """A statement without comment lines, layout and what the fix adds to a build."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    text = " ".join(" ".join(lines).split())
    return text.replace(" CONCURRENTLY", "").replace(" IF NOT EXISTS", "").rstrip(";")


def _order(tmp_path: Path, before: str) -> tuple[int, int | None, int]:
    """Where the concurrent build lands in the rewritten plan, where the earlier
    statement does (None: there is none) and the first step of a transaction."""
    f = tmp_path / "001.sql"
    f.write_text(f"BEGIN;\n{before}\n{BUILD}\nCOMMIT;\n")
    plan, rewrites = rewrite_plan(load_plan([f]))
    assert "PW101" in [r.code for r in rewrites]
    sqls = [_bare(s.sql) for s in plan.steps]
    build = sqls.index(_bare(BUILD))
    assert "CONCURRENTLY" in plan.steps[build].sql and plan.steps[build].transaction is None
    first = _bare(before)
    begin = min(i for i, s in enumerate(plan.steps) if s.transaction is not None)
    return build, sqls.index(first) if first else None, begin


@pytest.mark.parametrize("before", AFTER.values(), ids=list(AFTER))
def test_build_is_not_moved_ahead_of_what_it_may_need(before: str, tmp_path: Path) -> None:
    build, earlier, _ = _order(tmp_path, before)
    assert earlier is not None and earlier < build


@pytest.mark.parametrize("before", BEFORE.values(), ids=list(BEFORE))
def test_build_still_moves_ahead_of_what_it_cannot_need(before: str, tmp_path: Path) -> None:
    build, _, begin = _order(tmp_path, before)
    assert build < begin  # ahead of the whole transaction: not split
