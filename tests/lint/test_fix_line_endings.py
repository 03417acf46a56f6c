"""lint --fix keeps what the file had: CRLF line endings stay CRLF (every line of the
rewrite, the statements' own line breaks and a goose down half included), LF stays LF,
and a missing final newline stays missing."""

from __future__ import annotations

import re
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
HAZARDS = (ROOT / "examples" / "incident" / "002_more_hazards.sql").read_text()
MULTI_LINE = (
    "-- a statement over lines\n"
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


def _lf_fix(tmp_path: Path, text: str) -> str:
    return _fixed(tmp_path / "lf" / "m.sql", text.encode()).decode()


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def test_crlf_file_is_fixed_with_crlf(tmp_path: Path) -> None:
    """Before, the rewrite came out LF (with the CR of a statement's own line breaks left
    in: mixed endings)."""
    (tmp_path / "lf").mkdir()
    for n, text in enumerate([HAZARDS, MULTI_LINE]):
        got = _fixed(tmp_path / f"crlf{n}.sql", _crlf(text))
        assert re.search(rb"(?<!\r)\n", got) is None, got  # no bare LF
        assert got.endswith(b";\r\n")
        assert got == _crlf(_lf_fix(tmp_path, text))  # the same fix, CRLF


def test_lf_file_stays_lf(tmp_path: Path) -> None:
    got = _fixed(tmp_path / "m.sql", MULTI_LINE.encode())
    assert b"\r" not in got and got.endswith(b";\n")


def test_a_missing_final_newline_stays_missing(tmp_path: Path) -> None:
    """Before, the rewrite always ended in a line break."""
    (tmp_path / "lf").mkdir()
    want = _lf_fix(tmp_path, HAZARDS)
    got = _fixed(tmp_path / "lf.sql", HAZARDS.rstrip("\n").encode())
    assert got == want.removesuffix("\n").encode()
    got = _fixed(tmp_path / "crlf.sql", _crlf(HAZARDS.rstrip("\n")))
    assert got == _crlf(want).removesuffix(b"\r\n")


def test_fixing_a_fixed_crlf_file_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    once = _fixed(path, _crlf(HAZARDS))
    plan, result = lint([path], context=CTX)
    assert [fx.new for fx in fix_plan(plan, result, STATS)] in ([], [once.decode()])


def test_goose_down_half_of_a_crlf_file_stays_crlf(tmp_path: Path) -> None:
    text = (
        "-- +goose Up\nCREATE INDEX invoices_status_idx ON invoices (status);\n\n"
        "-- +goose Down\nDROP INDEX invoices_status_idx;\n"
    )
    got = _fixed(tmp_path / "001_x.sql", _crlf(text))
    assert re.search(rb"(?<!\r)\n", got) is None, got
    assert got.endswith(b"-- +goose Down\r\nDROP INDEX invoices_status_idx;\r\n")


def test_fixed_crlf_file_runs(tmp_path: Path, db: str) -> None:
    path = tmp_path / "m.sql"
    _fixed(path, _crlf(MULTI_LINE))
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=200, accounts_rows=10)
        for stmt in parse(path.read_bytes().decode()):
            c.execute(stmt.text)
        got = c.execute(
            "SELECT count(*) FROM pg_index WHERE indexrelid = 'invoices_status_idx'::regclass "
            "AND indisvalid"
        ).fetchone()
    assert got == (1,)
