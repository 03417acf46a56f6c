"""A statement is labelled in one line, cut after a whole word with an ellipsis, the
same way in every view that shows one (progress lines, rehearsal table, explain,
status, the apply preview)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pgwarden.events import RehearsalStep, StepStarted
from pgwarden.report.events import render
from pgwarden.sources.labels import shorten, statement_label

FK = (
    "ALTER TABLE invoices\n"
    "    ADD CONSTRAINT invoices_payment_account_id_fkey\n"
    "    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id)"
)


def test_a_label_is_one_line_cut_after_a_whole_word() -> None:
    label = statement_label(FK, 70)
    # before: FK[:70], its newlines kept and the cut inside FOREIGN ("..._fkey\n F")
    assert label == "ALTER TABLE invoices ADD CONSTRAINT invoices_payment_account_id_fkey…"
    assert len(label) <= 70 and "\n" not in label


def test_a_short_statement_is_left_whole_in_one_line() -> None:
    assert statement_label("SELECT\n  1;", 70) == "SELECT 1;"
    assert statement_label(" ".join(FK.split()), 200) == " ".join(FK.split())


def test_a_long_word_is_cut_inside_rather_than_leaving_almost_nothing() -> None:
    word = "x" * 80
    assert shorten(f"DROP INDEX {word}", 40) == f"DROP INDEX {word}"[:39] + "…"
    assert len(shorten(word, 10)) == 10


def test_a_cut_at_a_word_end_keeps_that_word() -> None:
    assert shorten("aaaa bbbb cccc", 10) == "aaaa bbbb…"


def test_progress_lines_use_the_label() -> None:
    started = StepStarted(
        step=1, steps=(1,), attempt=1, lock_timeout_ms=500, statement_timeout_ms=0, sql=(FK,)
    )
    line = "".join(t.plain for t in render(started))
    assert line.endswith(": " + statement_label(FK, 90)), line
    rehearsed = RehearsalStep(
        step=1,
        status="ok",
        sql=FK + " NOT VALID" * 3,
        location="x.sql:1",
        duration_s=1.0,
        acquire_s=0,
    )
    line = "".join(t.plain for t in render(rehearsed))
    assert "\n" not in line and line.endswith("…"), line


def test_explain_title_uses_the_label(tmp_path: Path) -> None:
    text = FK.replace("(id)", "(id) ON DELETE CASCADE ON UPDATE CASCADE DEFERRABLE")
    (tmp_path / "fk.sql").write_text(text + ";\n")
    # a process of its own, piped, without COLUMNS: pytest-xdist's workers set COLUMNS=80
    # and the CLI's console is made once per process (an earlier test's width would stick)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    args = ["explain", str(tmp_path / "fk.sql"), "--pg-version", "16"]
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", *args], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    title = " ".join(ln for ln in r.stdout.splitlines() if "fk.sql:1" in ln)
    # before: cut inside a word ("... REFERENCES payment_acc...")
    assert statement_label(text, 90).endswith("…")
    assert statement_label(text, 90) in title, r.stdout
