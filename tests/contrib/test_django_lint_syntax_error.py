"""`manage.py pgwarden lint --format json|sarif|gitlab` on a RunSQL the server grammar
rejects writes a valid report carrying it (one PW901 syntax-error finding at the
migration's file and line), as `pgwarden lint` does; the error on stderr and exit code 2
stay. Before, stdout was empty: CI uploading the report got an empty, invalid file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.contrib.django_site import manage_multi

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"
PARSER = 'syntax error at or near "int"'
MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("beta", "0004_shelf")]
    operations = [
        migrations.RunSQL("ALTER TABLE beta_book ADD COLUM y int"),
    ]
"""
PATH = "beta/migrations/0005_bad_sql.py"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("django") / "site"
    shutil.copytree(PROJECT, site)
    (site / PATH).write_text(MIGRATION)
    return site


def _lint(project: Path, db: str, fmt: str) -> tuple[Any, str]:
    r = manage_multi(project, db, "pgwarden", "lint", "--sql-only", "--format", fmt)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "error: " in r.stderr and PARSER in r.stderr, r.stderr
    assert r.stdout.strip(), f"empty report on stdout; stderr: {r.stderr}"
    return json.loads(r.stdout), r.stderr


def test_json_carries_the_syntax_error(project: Path, db: str) -> None:
    doc, _ = _lint(project, db, "json")
    [f] = doc["findings"]
    assert f["code"] == "PW901" and f["severity"] == "error" and PARSER in f["message"]
    assert f["location"]["path"] == PATH and f["location"]["line"] == 7
    assert doc["summary"]["errors"] == 1


def test_sarif_carries_the_syntax_error(project: Path, db: str) -> None:
    log, _ = _lint(project, db, "sarif")
    [run] = log["runs"]
    [result] = run["results"]
    assert result["ruleId"] == "PW901" and result["level"] == "error"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "PW901"
    [loc] = result["locations"]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == PATH
    assert loc["physicalLocation"]["region"]["startLine"] == 7


def test_gitlab_carries_the_syntax_error(project: Path, db: str) -> None:
    report, _ = _lint(project, db, "gitlab")
    [issue] = report
    assert issue["check_name"] == "PW901" and issue["severity"] == "critical"
    assert issue["location"] == {"path": PATH, "lines": {"begin": 7}}


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_text_and_github_say_it_on_stderr_only(project: Path, db: str, fmt: str) -> None:
    r = manage_multi(project, db, "pgwarden", "lint", "--sql-only", "--format", fmt)
    assert r.returncode == 2, r.stdout + r.stderr
    assert PARSER in r.stderr and "Traceback" not in r.stderr
    # at the RunSQL in the migration file, with the position in the SQL it runs
    assert f"error: {PATH}:7:9: syntax error: {PARSER}" in r.stderr, r.stderr
    assert "in the SQL of beta.0005_bad_sql, at line 1 column 35" in r.stderr, r.stderr
    assert "PW901" not in r.stdout
