"""The rehearsal table names each statement by its one-line label (demo step 5 showed
`... invoices_payment_account_id_fkey F`: the SQL cut at 70 characters inside a word)."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from pgwarden.rehearse.model import Blocking, HeldLock, RehearsalResult, StepTrace
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


def _text(step: StepTrace) -> str:
    result = RehearsalResult("f" * 64, "completed", "scratch", "18.1", "given SQL", steps=(step,))
    buf = io.StringIO()
    render_text(Console(file=buf, width=300, color_system=None), result)
    return buf.getvalue()


def test_production_estimates_line_only_when_there_are_estimates() -> None:
    # no stats snapshot: nothing was scaled, so no line about production figures
    lock = HeldLock("pg_toast.pg_toast_16385", "ACCESS EXCLUSIVE", 0.0, 1.0)
    own = HeldLock("invoices", "ACCESS EXCLUSIVE", 0.0, 1.0)
    plain = StepTrace(0, FK, "001.sql:1:1", "AlterTableStmt", None, "ok", locks=(own, lock))
    out = _text(plain)
    assert "Production figures" not in out
    assert "ACCESS EXCLUSIVE invoices" in out
    assert "pg_toast" not in out  # locked with its table, not a name the user knows
    blocked = Blocking("invoices", 0.5, 0.5, 3, 3, 12.0, 12.0)
    scaled = replace(plain, blocking=(blocked,), scale=250.0)
    assert "Production figures are estimates" in _text(scaled)
