"""A file with a SQL syntax error still gets a valid machine report.

`pgwarden lint --format json|sarif|gitlab` writes a document carrying the syntax
error as a finding (file, line, column, the parser's message), with the same exit
code (2) and message on stderr as the text format. Before, stdout was empty: CI that
uploads the report had an empty, invalid file. Text and github output are unchanged
(the error on stderr only).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PGWARDEN = [sys.executable, "-c", "from pgwarden.cli import main; main()"]
SQL = "CREATE INDEX ON accounts (x);\nALTER TABLE accounts ADD COLUM y int;\n"
PARSER = 'syntax error at or near "int"'


def _lint(tmp_path: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001_bad.sql").write_text(SQL)
    return subprocess.run(
        [*PGWARDEN, "lint", "--format", fmt, "migrations/001_bad.sql"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _same_error_as_text(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(
        f"pgwarden: error: migrations/001_bad.sql:2:34: syntax error: {PARSER}"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_text_and_github_say_it_on_stderr_only(tmp_path: Path, fmt: str) -> None:
    proc = _lint(tmp_path, fmt)
    _same_error_as_text(proc)
    assert proc.stdout == ""


def test_json_carries_the_syntax_error(tmp_path: Path) -> None:
    proc = _lint(tmp_path, "json")
    _same_error_as_text(proc)
    doc: dict[str, Any] = json.loads(proc.stdout)
    [f] = doc["findings"]
    assert f["code"] == "PW901" and f["name"] == "syntax-error" and f["severity"] == "error"
    assert PARSER in f["message"]
    assert f["location"] == {"path": "migrations/001_bad.sql", "line": 2, "column": 34}
    assert f["fix"] is None and f["fix_mechanical"] is None
    assert doc["summary"]["errors"] == 1 and doc["summary"]["statements"] == 0


def test_sarif_carries_the_syntax_error(tmp_path: Path) -> None:
    proc = _lint(tmp_path, "sarif")
    _same_error_as_text(proc)
    log: dict[str, Any] = json.loads(proc.stdout)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    [result] = run["results"]
    rules = run["tool"]["driver"]["rules"]
    assert result["ruleId"] == "PW901" and rules[result["ruleIndex"]]["id"] == "PW901"
    assert result["level"] == "error" and PARSER in result["message"]["text"]
    [loc] = result["locations"]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "migrations/001_bad.sql"
    assert loc["physicalLocation"]["region"] == {"startLine": 2, "startColumn": 34}


def test_gitlab_carries_the_syntax_error(tmp_path: Path) -> None:
    proc = _lint(tmp_path, "gitlab")
    _same_error_as_text(proc)
    report: list[dict[str, Any]] = json.loads(proc.stdout)
    [issue] = report
    assert issue["check_name"] == "PW901" and issue["severity"] == "critical"
    assert PARSER in issue["description"]
    assert issue["location"] == {"path": "migrations/001_bad.sql", "lines": {"begin": 2}}
    assert len(issue["fingerprint"]) == 64


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_syntax_error_in_one_file_of_a_folder_leaves_the_others_linted(
    tmp_path: Path, fmt: str
) -> None:
    """One broken file of a folder: the other files are still linted and reported, the
    broken one is a PW901 finding, and the exit code and stderr error stay those of a
    syntax error (2). Before, nothing was linted: the report held only PW901 ("files": 0),
    and the real hazards of the other files went unseen until the SQL was fixed."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_index.sql").write_text("CREATE INDEX ON accounts (x);\n")
    (folder / "002_bad.sql").write_text("ALTER TABLE accounts ADD COLUM y int;\n")
    (folder / "003_drop.sql").write_text("DROP TABLE ledger;\n")
    proc = subprocess.run(
        [*PGWARDEN, "lint", "--format", fmt, "migrations"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(
        f"pgwarden: error: migrations/002_bad.sql:1:34: syntax error: {PARSER}"
    ), proc.stderr
    assert "the other 2 file(s) were linted" in proc.stderr, proc.stderr
    if fmt == "json":
        doc: dict[str, Any] = json.loads(proc.stdout)
        codes = {(f["location"]["path"], f["code"]) for f in doc["findings"]}
        assert ("migrations/001_index.sql", "PW101") in codes
        assert ("migrations/002_bad.sql", "PW901") in codes
        assert ("migrations/003_drop.sql", "PW201") in codes
    else:
        assert "migrations/002_bad.sql:1:34: error PW901 syntax-error" in proc.stdout
        assert "error PW101" in proc.stdout and "error PW201" in proc.stdout


def test_a_refused_psql_file_of_a_folder_leaves_the_others_linted(tmp_path: Path) -> None:
    """A file with a psql meta-command pgwarden refuses (\\gexec: it changes what runs) is
    reported as not linted, like a syntax error, and the other files are linted. Before,
    the whole folder stopped with exit 2 and the report held nothing (a sqitch deploy
    folder in the real-project sweep)."""
    folder = tmp_path / "deploy"
    folder.mkdir()
    (folder / "001_grants.sql").write_text("SELECT format('GRANT ...') \\gexec\n")
    (folder / "002_index.sql").write_text("CREATE INDEX ON accounts (x);\n")
    proc = subprocess.run(
        [*PGWARDEN, "lint", "--format", "json", "deploy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith(
        "pgwarden: error: deploy/001_grants.sql:1:28: psql meta-command \\gexec"
    ), proc.stderr
    assert "the other 1 file(s) were linted" in proc.stderr
    assert "run this step with psql itself" in proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    codes = {(f["location"]["path"], f["code"]) for f in doc["findings"]}
    assert codes >= {("deploy/001_grants.sql", "PW901"), ("deploy/002_index.sql", "PW101")}
