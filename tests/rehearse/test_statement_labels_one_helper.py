"""Every one-line statement label is cut by `sources.labels.statement_label`, at the width each
output had: the rehearsal's step SQL (160), a notification's step summary (120) and a
backend's description in `pgwarden status` / cancel messages (80). Each used to cut with its
own copy, inside a word (the rehearsal with "...")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgwarden.apply.liveness import Backend
from pgwarden.events import RehearsalStep, StepStarted
from pgwarden.notify.events import Tracker, event_text
from pgwarden.sources.labels import statement_label
from tests.rehearse.conftest import write

LONG = (
    "ALTER TABLE invoices\n    ADD COLUMN a_rather_long_column_name_number_one text,\n"
    "    ADD COLUMN a_rather_long_column_name_number_two text,\n"
    "    ADD COLUMN a_rather_long_column_name_number_three text,\n"
    "    ADD COLUMN a_rather_long_column_name_number_four text"
)


def test_rehearsal_steps_are_labelled_at_160(run: Any, tmp_path: Path) -> None:
    result = run([write(tmp_path, "001.sql", LONG + ";\n")], default_rows=200)
    assert result.status == "completed"
    (step,) = result.steps
    assert step.sql == statement_label(LONG, 160), step.sql
    assert step.sql.endswith("…") and len(step.sql) <= 160


def test_notification_step_summaries_are_labelled_at_120() -> None:
    started = StepStarted(
        step=3, steps=(3,), attempt=1, lock_timeout_ms=500, statement_timeout_ms=0, sql=(LONG,)
    )
    assert event_text(started) == f"step 3 started (attempt 1): {statement_label(LONG, 120)}"
    tracker = Tracker("rehearse", stuck_after_s=60, stuck_factor=3, progress_every_s=60)
    failed = RehearsalStep(
        step=0, status="failed", sql=LONG, location="001.sql:1:1", duration_s=0.1, acquire_s=0
    )
    tracker.observe(failed)
    (note,) = tracker.finish(None)
    assert f"a step failed on the copy: {statement_label(LONG, 120)}" in note.summary, note


def test_a_backend_is_described_with_its_statement_labelled_at_80() -> None:
    busy = Backend(pid=42, state="active", query=LONG, wait="Lock/relation", seconds=3.0)
    label = statement_label(LONG, 80)
    assert busy.describe() == (
        f"backend pid 42 is running for 3 s, waiting for Lock/relation: {label}"
    )
    idle = Backend(pid=42, state="idle in transaction", query=LONG, wait=None, seconds=None)
    assert idle.describe() == f"backend pid 42 is idle in transaction (last statement: {label})"
