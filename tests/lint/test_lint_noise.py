"""Signal, not noise: one PW120 per transaction, one merged fix per statement, help once a file."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from pgwarden.analysis.context import load_snapshot
from pgwarden.commands import Context, lint
from pgwarden.report.lint_text import render_lint

ROOT = Path(__file__).resolve().parents[2]
STATS = load_snapshot(ROOT / "tests" / "rules" / "cases" / "demo-stats.json")
CTX = Context(STATS, STATS.catalog, 15, "snapshot")


def _text(path: Path) -> str:
    plan, result = lint([path], context=CTX)
    buf = io.StringIO()
    render_lint(Console(file=buf, width=80, color_system=None), plan, result)
    return buf.getvalue()


def test_one_lock_timeout_finding_per_transaction(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(
        "ALTER TABLE invoices ADD COLUMN a text;\n"
        "ALTER TABLE invoices ADD COLUMN b text;\n"
        "ALTER TABLE payment_accounts ADD COLUMN c text;\n"
    )
    _, result = lint([f], context=CTX)  # the file is one transaction
    assert [x.location.line for x in result.findings if x.code == "PW120"] == [1]
    f.write_text(
        "BEGIN;\nALTER TABLE invoices ADD COLUMN a text;\nALTER TABLE invoices ADD COLUMN b text;\n"
        "COMMIT;\nBEGIN;\nALTER TABLE payment_accounts ADD COLUMN c text;\nCOMMIT;\n"
    )
    _, result = lint([f], context=CTX)
    assert [x.location.line for x in result.findings if x.code == "PW120"] == [2, 6]


def test_fixes_on_one_statement_merge_without_the_plain_index(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text("CREATE INDEX invoices_note_idx ON invoices (status);\n")
    _, result = lint([f], context=CTX)
    assert {x.code for x in result.findings} >= {"PW101", "PW120"}
    pw120 = next(x for x in result.findings if x.code == "PW120")
    assert pw120.fix is not None
    assert "CREATE INDEX" not in pw120.fix.sql  # only the session setting
    text = _text(f)
    assert text.count("\n  fix") == 1, text  # one merged fix
    assert "fix (PW101, PW120):" in text
    assert "SET lock_timeout = '1s';" in text
    assert "CREATE INDEX CONCURRENTLY invoices_note_idx" in text
    assert "CREATE INDEX invoices_note_idx" not in text.split("fix (")[1]


def test_repeated_help_is_printed_once_per_file_with_the_locations(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(
        "BEGIN;\nALTER TABLE invoices ALTER COLUMN status TYPE varchar(3);\nCOMMIT;\n"
        "BEGIN;\nALTER TABLE payment_accounts ALTER COLUMN iban TYPE varchar(3);\nCOMMIT;\n"
    )
    _, result = lint([f], context=CTX)
    pw104 = [x for x in result.findings if x.code == "PW104"]
    assert len(pw104) == 2 and pw104[0].help == pw104[1].help
    text = _text(f)
    assert text.count(pw104[0].help) == 1
    assert "(the same help for PW104 at 5:1 below)" in text
