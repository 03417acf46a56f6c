"""A RENAME in a `lint --fix` output runs again without failing.

The fixed file's header says to retry the whole file after a failure. A rename
that committed before the failure would fail the retry ("column ... does not
exist"): the fixed file renames only unless it is done already (the old name
gone, the new one there). Linting the fixed file still reports the renames.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
RENAMES = """\
CREATE INDEX invoices_created_at_idx ON invoices (created_at);
BEGIN;
ALTER TABLE invoices RENAME COLUMN status TO state;
ALTER TABLE invoices RENAME CONSTRAINT invoices_payment_account_id_fkey TO invoices_account_fkey;
ALTER INDEX invoices_payment_account_id_idx RENAME TO invoices_account_idx;
COMMIT;
ALTER TABLE settings RENAME TO app_settings;
ALTER TABLE app_settings ADD COLUMN note text;
ALTER TABLE invoices ADD COLUMN paid_at timestamptz;
"""


def _fixed(tmp_path: Path, major: int, text: str = RENAMES) -> tuple[list[str], set[str], set[str]]:
    """The fixed file's statements, and the codes lint finds before and after."""
    snap = load_snapshot(CASES / "demo-stats.json")
    ctx = Context(snap, snap.catalog, major, "snapshot")
    f = tmp_path / "001.sql"
    f.write_text(text)
    plan, result = lint([f], context=ctx)
    fixes = fix_plan(plan, result, snap)
    assert fixes
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    return (
        [s.text for s in parse(f.read_text())],  # the header's comments are the first's
        {x.code for x in result.findings},
        {x.code for x in after.findings},
    )


def _schema(c: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return c.execute(
        "SELECT 'column', attrelid::regclass::text || '.' || attname FROM pg_attribute "
        "WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r') AND attnum > 0 AND NOT attisdropped "
        "UNION ALL SELECT 'constraint', conname FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace "
        "UNION ALL SELECT relkind::text, relname FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace ORDER BY 1, 2"
    ).fetchall()


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
    return dsn


def test_renames_in_a_fixed_file_run_again(pg_any: Cluster, tmp_path: Path) -> None:
    stmts, before, after = _fixed(tmp_path, pg_any.installation.major)
    assert {"PW203", "PW204"} <= after <= before  # the renames are still reported
    with psycopg.connect(_database(pg_any), autocommit=True) as plain:
        for stmt in parse(RENAMES):
            plain.execute(stmt.text.encode())
        want = _schema(plain)
    with psycopg.connect(_database(pg_any), autocommit=True) as c:
        # A first run that failed at its last statement: the renames committed.
        for q in stmts[:-1]:
            c.execute(q.encode())
        for _ in range(2):  # the retry the header asks for, and another
            for q in stmts:
                c.execute(q.encode())
        assert _schema(c) == want


NAMED_BEFORE = """\
CREATE INDEX invoices_status_idx ON invoices (status);
BEGIN;
ALTER TABLE invoices RENAME COLUMN status TO state;
COMMIT;
ALTER TABLE invoices ADD COLUMN paid_at timestamptz;
"""


def _run(c: psycopg.Connection[tuple[object, ...]], stmts: list[str]) -> None:
    for q in stmts:
        c.execute(q.encode())


def test_a_rename_after_a_statement_naming_it_is_told(pg_cluster: Cluster, tmp_path: Path) -> None:
    """A statement before the RENAME that names the old column fails once the rename has
    committed (CREATE INDEX ... IF NOT EXISTS resolves its columns first): the header says
    so, and what it says to do instead works."""
    stmts, _, _ = _fixed(tmp_path, pg_cluster.installation.major, NAMED_BEFORE)
    header = "-- A RENAME below follows statements naming what it renames"
    assert header in (tmp_path / "001.sql").read_text()
    with psycopg.connect(_database(pg_cluster), autocommit=True) as c:
        _run(c, stmts[:-1])  # a first run that failed at its last statement
        with pytest.raises(psycopg.errors.UndefinedColumn):
            _run(c, stmts)
        _run(c, stmts[-1:])  # the file from the statement that failed
        assert c.execute("SELECT to_regclass('invoices_status_idx')").fetchone() != (None,)


# A RENAME of a type, domain, routine, schema, publication or trigger that statements before
# it name: once it has committed, a re-run makes the object anew (its CREATE is skipped only
# while the old name is there) or does not find it, and the RENAME fails.
OTHER_RENAMES = {
    "type": "CREATE TYPE mood AS ENUM ('ok');\nALTER TABLE invoices ADD COLUMN m mood;\n"
    "ALTER TYPE mood RENAME TO feeling;",
    "domain": "CREATE DOMAIN mail AS text;\nALTER TABLE invoices ADD COLUMN contact mail;\n"
    "ALTER DOMAIN mail RENAME TO post;",
    "function": "CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';\n"
    "ALTER FUNCTION twice(int) RENAME TO double;",
    "schema": "CREATE SCHEMA crm;\nCREATE TABLE crm.leads (id int);\n"
    "ALTER SCHEMA crm RENAME TO sales;",
    "publication": "CREATE PUBLICATION pub_old;\nALTER PUBLICATION pub_old RENAME TO pub_new;",
    "trigger": "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql\n"
    "    AS $$ BEGIN RETURN NEW; END $$;\n"
    "CREATE TRIGGER t_old BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION touch();\n"
    "ALTER TRIGGER t_old ON invoices RENAME TO t_new;",
}


@pytest.mark.parametrize("sql", OTHER_RENAMES.values(), ids=OTHER_RENAMES.keys())
def test_a_rename_of_another_object_after_a_statement_naming_it_is_told(
    pg_any: Cluster, tmp_path: Path, sql: str
) -> None:
    """The header line about RENAMEs covers types, domains, routines and schemas too, and
    what it says to do works: after the failure, the file from the statement that failed
    leaves what one run of the original does."""
    original = f"BEGIN;\n{sql}\nCOMMIT;\nCREATE INDEX invoices_note_idx ON invoices (status);\n"
    stmts, _, _ = _fixed(tmp_path, pg_any.installation.major, original)
    assert (
        "-- A RENAME below follows statements naming what it renames"
        in (tmp_path / "001.sql").read_text()
    )
    with psycopg.connect(_database(pg_any), autocommit=True) as plain:
        _run(plain, [s.text for s in parse(original)])
        want = _objects(plain)
    with psycopg.connect(_database(pg_any), autocommit=True) as c:
        _run(c, stmts)  # the first run
        failed = None
        for i, q in enumerate(stmts):  # the retry the header allows
            try:
                c.execute(q.encode())
            except psycopg.errors.Error:
                failed = i
                c.execute("ROLLBACK")
                break
        assert failed is not None and "RENAME" in stmts[failed]
        _run(c, stmts[failed:])  # the file from the statement that failed
        assert _objects(c) == want


def _objects(c: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return c.execute(
        "SELECT 'type', t.oid::regtype::text FROM pg_type t JOIN pg_namespace n "
        "ON n.oid = t.typnamespace WHERE n.nspname NOT LIKE 'pg\\_%' AND "
        "n.nspname <> 'information_schema' AND t.typrelid = 0 AND t.typelem = 0 "
        "UNION ALL SELECT 'function', p.oid::regprocedure::text FROM pg_proc p "
        "WHERE p.pronamespace = 'public'::regnamespace "
        "UNION ALL SELECT 'schema', nspname::text FROM pg_namespace "
        "WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' "
        "UNION ALL SELECT 'publication', pubname::text FROM pg_publication "
        "UNION ALL SELECT 'trigger', tgname::text FROM pg_trigger WHERE NOT tgisinternal "
        "UNION ALL SELECT 'relation', oid::regclass::text FROM pg_class "
        "WHERE relnamespace::regnamespace::text NOT LIKE 'pg\\_%' "
        "AND relnamespace <> 'information_schema'::regnamespace ORDER BY 1, 2"
    ).fetchall()
