"""The rehearsal table names each statement by its one-line label (demo step 5 showed
`... invoices_payment_account_id_fkey F`: the SQL cut at 70 characters inside a word)."""

from __future__ import annotations

import io

from rich.console import Console

from pgwarden.rehearse.model import RehearsalResult, StepTrace
from pgwarden.rehearse.report_text import render_text

FK = (
    "ALTER TABLE invoices\n"
    "    ADD CONSTRAINT invoices_payment_account_id_fkey\n"
    "    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id)"
)


def test_the_statement_column_is_one_line_cut_after_a_whole_word() -> None:
    step = StepTrace(0, FK, "001.sql:1:1", "AlterTableStmt", None, "ok")
    result = RehearsalResult("f" * 64, "completed", "scratch", "18.1", "given SQL", steps=(step,))
    buf = io.StringIO()
    render_text(Console(file=buf, width=300, color_system=None), result)
    row = next(ln for ln in buf.getvalue().splitlines() if "ALTER TABLE" in ln)
    assert "ALTER TABLE invoices ADD CONSTRAINT invoices_payment_account_id_fkey…" in row, row
    assert "fkey F" not in row
