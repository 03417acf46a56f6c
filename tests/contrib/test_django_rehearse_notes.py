"""`manage.py pgwarden rehearse`'s text output prints the rehearsal's notes, as `pgwarden
rehearse` does (they went only to stderr while running, and to the JSON and HTML reports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contrib.test_django_rehearse_choices import manage

pytest.importorskip("django")


def test_text_output_has_the_notes(db: str, tmp_path: Path) -> None:
    done = manage(db, "migrate", "tickets", "0001", "--verbosity", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = manage(db, "pgwarden", "rehearse", cwd=tmp_path)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("rehearsal completed: "), out.stdout
    assert (
        "note: tickets_slot.day: synthetic values, not its 2 choices: it is in the unique key "
        "(day) and no other column of it has a value per row"
    ) in lines
    assert any(x.startswith("note: no stats snapshot (--stats): tables got ") for x in lines)
    assert len(lines) == len(set(lines)), out.stdout  # no note twice
