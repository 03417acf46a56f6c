"""`pgwarden lint --alembic --format json|sarif|gitlab` on an op.execute the server
grammar rejects writes a valid report carrying it (one PW901 syntax-error finding at the
revision file and the line of the op.execute), as `pgwarden lint` does for a .sql file;
the error on stderr names that file and line, exit code 2. Before, stdout was empty and
the error said `<alembic>:1:34`, naming no file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("alembic")

PROJECT = Path(__file__).parent / "alembic_project"
PARSER = 'syntax error at or near "int"'
PATH = "versions/0006_bad_sql.py"
REVISION = '''"""bad sql

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE invoices ADD COLUM y int")


def downgrade() -> None:
    pass
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("alembic") / "proj"
    shutil.copytree(PROJECT, site)
    (site / PATH).write_text(REVISION)
    return site


def _lint(project: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", "lint", "--alembic", "alembic.ini", "--format", fmt],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"pgwarden: error: {PATH}:16:"), r.stderr
    assert PARSER in r.stderr and "revision 0006" in r.stderr, r.stderr
    return r


def test_json_carries_the_syntax_error(project: Path) -> None:
    doc: dict[str, Any] = json.loads(_lint(project, "json").stdout)
    [f] = doc["findings"]
    assert f["code"] == "PW901" and f["severity"] == "error" and PARSER in f["message"]
    assert f["location"]["path"] == PATH and f["location"]["line"] == 16
    assert doc["summary"]["errors"] == 1


def test_sarif_carries_the_syntax_error(project: Path) -> None:
    log: dict[str, Any] = json.loads(_lint(project, "sarif").stdout)
    [run] = log["runs"]
    [result] = run["results"]
    assert result["ruleId"] == "PW901" and result["level"] == "error"
    [loc] = result["locations"]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == PATH
    assert loc["physicalLocation"]["region"]["startLine"] == 16


def test_gitlab_carries_the_syntax_error(project: Path) -> None:
    [issue] = json.loads(_lint(project, "gitlab").stdout)
    assert issue["check_name"] == "PW901" and issue["location"] == {
        "path": PATH,
        "lines": {"begin": 16},
    }


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_text_and_github_say_it_on_stderr_only(project: Path, fmt: str) -> None:
    assert _lint(project, fmt).stdout == ""
