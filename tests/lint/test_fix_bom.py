"""lint --fix keeps a UTF-8 byte order mark (files saved by Windows editors and SSMS often
start with one) exactly as the file had it, and lint places findings of such a file as
it does without the mark (line 1, column 1 for the first statement)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.sample import create_sample_schema

ROOT = Path(__file__).resolve().parents[2]
STATS = load_snapshot(ROOT / "tests" / "rules" / "cases" / "demo-stats.json")
CTX = Context(STATS, STATS.catalog, 15, "snapshot")
BOM = b"\xef\xbb\xbf"
SQL = (
    "CREATE INDEX invoices_status_idx\n"
    "    ON invoices (status);\n"
    "ALTER TABLE invoices ADD CONSTRAINT amount_positive\n"
    "    CHECK (amount_cents > 0);\n"
)


def _fixed(path: Path, data: bytes) -> bytes:
    path.write_bytes(data)
    plan, result = lint([path], context=CTX)
    write_fixes(fix_plan(plan, result, STATS))
    return path.read_bytes()


def test_fix_keeps_the_bom(tmp_path: Path) -> None:
    """Before, the rewrite dropped the mark."""
    want = _fixed(tmp_path / "plain.sql", SQL.encode())
    assert want != SQL.encode()  # there was something to fix
    got = _fixed(tmp_path / "bom.sql", BOM + SQL.encode())
    assert got == BOM + want
    crlf = SQL.replace("\n", "\r\n").encode()
    got = _fixed(tmp_path / "bom_crlf.sql", BOM + crlf)
    assert got == BOM + want.replace(b"\n", b"\r\n")


def test_a_file_without_a_bom_gets_none(tmp_path: Path) -> None:
    assert not _fixed(tmp_path / "m.sql", SQL.encode()).startswith(BOM)


def test_fixing_a_fixed_bom_file_again_keeps_one_bom(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    once = _fixed(path, BOM + SQL.encode())
    twice = _fixed(path, once)
    assert twice.startswith(BOM) and not twice[3:].startswith(BOM)
    assert twice == once


def test_findings_of_a_bom_file_are_placed_as_without_it(tmp_path: Path) -> None:
    plain, bom = tmp_path / "plain.sql", tmp_path / "bom.sql"
    plain.write_bytes(SQL.encode())
    bom.write_bytes(BOM + SQL.encode())
    _, want = lint([plain], context=CTX)
    _, got = lint([bom], context=CTX)
    where = [(f.code, f.location.line, f.location.column) for f in got.findings]
    assert where == [(f.code, f.location.line, f.location.column) for f in want.findings]
    assert where and where[0][1:] == (1, 1)


def test_fixed_bom_file_runs(tmp_path: Path, db: str) -> None:
    path = tmp_path / "m.sql"
    data = _fixed(path, BOM + SQL.encode())
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=200, accounts_rows=10)
        for stmt in parse(data.decode("utf-8-sig")):
            c.execute(stmt.text)
        got = c.execute(
            "SELECT count(*) FROM pg_index WHERE indexrelid = 'invoices_status_idx'::regclass "
            "AND indisvalid"
        ).fetchone()
    assert got == (1,)
