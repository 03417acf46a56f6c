"""`ignore_sources` in standalone `pgwarden lint` and `lint --alembic`, not only Django (#15.4).

Findings of files matching an entry's `path` glob (optionally only some rules)
are suppressed with the entry's reason; the summary counts them per entry and
reason, in text and JSON.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pgwarden.cli.analyse import lint as lint_cmd

READS_PROJECT = Path(__file__).parent / "alembic_reads_project"
VENDOR_SQL = "CREATE INDEX events_kind_idx ON events (kind);\n"
OWN_SQL = "ALTER TABLE events ALTER COLUMN kind SET NOT NULL;\n"
CONFIG = """
[[ignore_sources]]
path = "vendor/*"
reason = "vendored migrations, reviewed upstream"

[[ignore_sources]]
app = "events"
reason = "a Django app label: never matches SQL files"
"""


def _json(output: str) -> dict[str, object]:
    doc = json.loads(output[output.index("{") : output.rindex("}") + 1])
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
def sql_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "001_index.sql").write_text(VENDOR_SQL)
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "002_not_null.sql").write_text(OWN_SQL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_standalone_lint_suppresses_by_path_with_the_reason_in_the_summary(
    sql_project: Path,
) -> None:
    before = _json(CliRunner().invoke(lint_cmd, ["vendor", "ours", "--format", "json"]).output)
    (sql_project / "pgwarden.toml").write_text(CONFIG)
    r = CliRunner().invoke(lint_cmd, ["vendor", "ours", "--format", "json"])
    assert r.exit_code == 1, r.output  # ours/002's SET NOT NULL still fails the run
    after = _json(r.output)
    findings = after["findings"]
    assert isinstance(findings, list) and isinstance(before["findings"], list)
    assert {f["location"]["path"] for f in findings} == {"ours/002_not_null.sql"}
    vendored = [f for f in before["findings"] if f["location"]["path"].startswith("vendor/")]
    assert vendored  # PW101 at least: suppressed now, not silently dropped
    summary = after["summary"]
    assert isinstance(summary, dict)
    assert summary["suppressed"] == len(vendored)
    assert summary["suppressed_by"] == [
        {
            "count": len(vendored),
            "by": 'pgwarden.toml: ignore_sources path "vendor/*"',
            "reason": "vendored migrations, reviewed upstream",
        }
    ]
    text = CliRunner().invoke(lint_cmd, ["vendor", "ours"]).output
    assert (
        f'{len(vendored)} suppressed by pgwarden.toml: ignore_sources path "vendor/*": '
        "vendored migrations, reviewed upstream" in " ".join(text.split())
    )


def test_alembic_lint_suppresses_one_rule_of_one_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    shutil.copytree(READS_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(project)
    args = ["--alembic", "--range", "0001:head", "--format", "json", "--fail-on", "never"]
    before = _json(CliRunner().invoke(lint_cmd, args).output)
    assert isinstance(before["findings"], list)
    index = [f for f in before["findings"] if f["code"] == "PW101"]
    assert [f["location"]["path"] for f in index] == ["versions/0003_metrics_key_index.py"]
    with (project / "pgwarden.toml").open("a", encoding="utf-8") as config:
        config.write(
            '\n[[ignore_sources]]\npath = "*/0003_*.py"\nrules = ["PW101"]\n'
            'reason = "metrics is small until the import lands"\n'
        )
    after = _json(CliRunner().invoke(lint_cmd, args).output)
    assert isinstance(after["findings"], list)
    assert not [f for f in after["findings"] if f["code"] == "PW101"]
    assert len(after["findings"]) == len(before["findings"]) - 1  # 0005's NOT NULL stays
    summary = after["summary"]
    assert isinstance(summary, dict)
    assert summary["suppressed_by"] == [
        {
            "count": 1,
            "by": 'pgwarden.toml: ignore_sources path "*/0003_*.py" rules PW101',
            "reason": "metrics is small until the import lands",
        }
    ]
