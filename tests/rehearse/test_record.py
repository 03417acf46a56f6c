"""The rehearsal record: written per plan fingerprint, found only for the exact plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgwarden.analysis.parse import parse
from pgwarden.plan import SourceText, build_plan
from pgwarden.rehearse.record import FORMAT, was_rehearsed
from tests.rehearse.conftest import write


def _plan(path: Path) -> Any:
    text = path.read_text()
    return build_plan([(SourceText(str(path), text), parse(text))], file_transaction=True)


def test_record_is_found_for_the_exact_plan_only(run: Any, tmp_path: Path):
    plan_file = write(tmp_path, "001.sql", "ALTER TABLE settings ADD COLUMN note text;\n")
    result = run([plan_file])
    records = tmp_path / "records"
    assert result.record_path == str(records / f"{result.fingerprint}.json")
    rec = was_rehearsed(_plan(plan_file), records)
    assert rec is not None and rec.completed and rec.fingerprint == result.fingerprint
    assert '"format": "' + FORMAT + '"' in Path(result.record_path).read_text()
    other = write(tmp_path, "002.sql", "ALTER TABLE settings ADD COLUMN other text;\n")
    assert was_rehearsed(_plan(other), records) is None
    # Same statements with other spacing and comments: the same normalized plan.
    same = write(tmp_path, "003.sql", "-- again\nALTER  TABLE settings\n  ADD COLUMN note text;\n")
    assert was_rehearsed(_plan(same), records) is not None


def test_failed_rehearsal_does_not_count(run: Any, tmp_path: Path):
    plan_file = write(tmp_path, "001.sql", "ALTER TABLE no_such_table ADD COLUMN x int;\n")
    result = run([plan_file])
    assert result.status == "failed"
    assert Path(str(result.record_path)).exists()
    assert was_rehearsed(_plan(plan_file), tmp_path / "records") is None
