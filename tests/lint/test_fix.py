"""lint --fix: the rewritten files lint clean of the fixed hazards and run on a real server."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.demo import create_sample_schema
from pgwarden.lint.fix import fix_plan, write_fixes

ROOT = Path(__file__).resolve().parents[2]
STATS = load_snapshot(ROOT / "tests" / "rules" / "cases" / "demo-stats.json")
CTX = Context(STATS, STATS.catalog, 15, "snapshot")


def _fix(tmp_path: Path, name: str) -> tuple[Path, set[str]]:
    f = tmp_path / Path(name).name
    shutil.copy(ROOT / "examples" / name, f)
    plan, result = lint([f], context=CTX)
    before = {x.code for x in result.findings}
    write_fixes(fix_plan(plan, result, STATS))
    return f, before


def _run(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for stmt in parse(path.read_text()):
            c.execute(stmt.text)


def test_incident_fix_is_not_valid_then_validate_and_lints_clean(tmp_path: Path, db: str):
    f, before = _fix(tmp_path, "incident/001_recreate_invoice_fk.sql")
    assert "PW102" in before
    text = f.read_text()
    assert "NOT VALID;" in text
    assert text.index("COMMIT;") < text.index("VALIDATE CONSTRAINT")
    _, after = lint([f], context=CTX)
    assert not after.findings, [x.code for x in after.findings]
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2000, accounts_rows=100)
    _run(db, f)
    with psycopg.connect(db) as c:
        row = c.execute(
            "SELECT convalidated, confdeltype FROM pg_constraint "
            "WHERE conname = 'invoices_payment_account_id_fkey'"
        ).fetchone()
    assert row == (True, "r")  # validated, ON DELETE RESTRICT


def test_hazards_fix_moves_concurrent_index_out_of_the_transaction(tmp_path: Path, db: str):
    f, before = _fix(tmp_path, "incident/002_more_hazards.sql")
    assert {"PW101", "PW103"} <= before
    text = f.read_text()
    head = text[: text.index("CREATE INDEX CONCURRENTLY")]
    assert head.count("BEGIN;") == head.count("COMMIT;")  # not inside a transaction
    _, after = lint([f], context=CTX)
    fixed = {x.code for x in after.findings}
    assert not fixed & {"PW101", "PW103", "PW120"}
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2000, accounts_rows=100)
        c.execute("UPDATE invoices SET status = 'open' WHERE status IS NULL")
    _run(db, f)
    with psycopg.connect(db) as c:
        valid = c.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_created_at_idx'::regclass"
        ).fetchone()
        notnull = c.execute(
            "SELECT attnotnull FROM pg_attribute "
            "WHERE attrelid = 'invoices'::regclass AND attname = 'status'"
        ).fetchone()
    assert valid == (True,)
    assert notnull == (True,)


def test_set_not_null_fix_fits_the_server_version_and_runs(tmp_path: Path, pg_any) -> None:
    """PostgreSQL 18: NOT NULL ... NOT VALID + VALIDATE; older: the CHECK-first recipe."""
    from tests.fixtures.pg import new_database

    major = pg_any.installation.major
    f = tmp_path / "001.sql"
    f.write_text("ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;\n")
    ctx = Context(STATS, STATS.catalog, major, "snapshot")
    plan, result = lint([f], context=ctx)
    assert "PW103" in {x.code for x in result.findings}
    write_fixes(fix_plan(plan, result, STATS))
    text = f.read_text()
    if major >= 18:
        assert "NOT NULL status NOT VALID;" in text and "CHECK" not in text
    else:
        assert "CHECK (status IS NOT NULL) NOT VALID;" in text
    _, after = lint([f], context=ctx)
    assert not {x.code for x in after.findings} & {"PW103", "PW106"}
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2000, accounts_rows=100)
        c.execute("UPDATE invoices SET status = 'open' WHERE status IS NULL")
    _run(dsn, f)
    with psycopg.connect(dsn) as c:
        notnull = c.execute(
            "SELECT attnotnull FROM pg_attribute "
            "WHERE attrelid = 'invoices'::regclass AND attname = 'status'"
        ).fetchone()
    assert notnull == (True,)
