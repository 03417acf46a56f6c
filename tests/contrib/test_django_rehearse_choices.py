"""`manage.py pgwarden rehearse` gives synthetic rows the values of the model fields' choices.

tests/contrib/django_choices: `tickets` 0001 is applied; pending is 0002: AddField
state_code, a RunPython mapping each of Ticket.state's choices (grouped, as Django
allows) to a code, as wagtail's 0086 maps permission_type, then AlterField state_code
NOT NULL. With synthetic `state` values none matched, state_code stayed NULL and the
SET NOT NULL failed on the copy (exit 3), a failure production would not have. Now
`state` takes its choices; so does Vote.kind, in a unique key with a foreign key
(a value per row); Slot.day, unique on its own, keeps its ordinary values and a note
says so.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.django_site import manage_fixture

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_choices"


def manage(dsn: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return manage_fixture(PROJECT, dsn, *args, cwd=cwd)


def test_a_runpython_mapping_choices_and_the_set_not_null_after_it_pass(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    done = manage(db, "migrate", "tickets", "0001", "--verbosity", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = manage(db, "pgwarden", "rehearse", "--format", "json", cwd=tmp_path)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]
    doc = json.loads(out.stdout)
    by_name = {s["sql"].split(":")[0]: s for s in doc["steps"]}
    mapped = by_name["tickets.0002_ticket_state_code"]
    assert mapped["status"] == "ok", mapped["error"]
    assert mapped["rows_written"] >= 10_000, mapped  # every synthetic ticket got its code
    assert doc["status"] == "completed"
    assert "synthetic values from the choices of 2 column(s)" in out.stderr
    note = (
        "tickets_slot.day: synthetic values, not its 2 choices: it is in the unique key (day) "
        "and no other column of it has a value per row"
    )
    assert note in doc["notes"] and note in out.stderr
    assert conn.execute("SELECT count(*) FROM tickets_ticket").fetchone() == (0,)  # untouched
