"""Every place pgwarden creates `.pgwarden/` creates it 0700 (docs/apply.md), its
subdirectories too, and the files in it 0600: `rehearse` made `.pgwarden/rehearsals`
and `.pgwarden` 0755 and its records 0644; `fleet` made `.pgwarden` 0755."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pgwarden.apply.local_journal import append_line
from pgwarden.fleet.journal import RolloutJournal, journal_path, runner_lock
from tests.rehearse.conftest import write


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask_022() -> Any:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_rehearsal_record_folder_is_private(run: Any, tmp_path: Path, umask_022: None):
    plan_file = write(tmp_path, "001.sql", "ALTER TABLE settings ADD COLUMN note text;\n")
    home = tmp_path / "project" / ".pgwarden"
    result = run([plan_file], default_rows=200, record_dir=home / "rehearsals")
    assert result.record_path is not None
    assert (_mode(home), _mode(home / "rehearsals")) == (0o700, 0o700)
    assert _mode(Path(result.record_path)) == 0o600
    assert _mode(tmp_path / "project") == 0o700  # every folder it made


def test_fleet_journal_and_apply_journal_folders_are_private(tmp_path: Path, umask_022: None):
    path = journal_path(str(tmp_path / "a" / ".pgwarden" / "fleet"), "prod", {})
    with runner_lock(path):
        RolloutJournal(path, {"version": 1}).save()
    assert _mode(tmp_path / "a" / ".pgwarden") == _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    journal = tmp_path / "b" / ".pgwarden" / "journal.jsonl"
    append_line(journal, b"{}\n")
    assert _mode(tmp_path / "b") == _mode(journal.parent) == 0o700
    assert _mode(journal) == 0o600
