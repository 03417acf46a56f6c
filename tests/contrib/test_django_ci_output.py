"""`manage.py pgwarden lint --format sarif|github|gitlab`: the CI formats of `pgwarden lint`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.contrib.test_django import PROJECT, manage, migrate

pytest.importorskip("django")


def test_django_lint_writes_ci_formats(db: str, tmp_path: Path) -> None:
    first = migrate(db, tmp_path, "billing", "0001")
    assert first.returncode == 0, first.stdout + first.stderr
    plain = manage(db, "pgwarden", "lint", "--unapplied", "--format", "json", "--fail-on", "note")
    assert plain.returncode == 1, plain.stdout + plain.stderr
    findings = json.loads(plain.stdout)["findings"]
    assert findings

    sarif = manage(db, "pgwarden", "lint", "--unapplied", "--format", "sarif", "--fail-on", "note")
    assert sarif.returncode == 1, sarif.stderr
    run = json.loads(sarif.stdout)["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == [f["code"] for f in findings]

    gitlab = manage(
        db, "pgwarden", "lint", "--unapplied", "--format", "gitlab", "--fail-on", "note"
    )
    assert gitlab.returncode == 1, gitlab.stderr
    issues = json.loads(gitlab.stdout)
    assert [i["check_name"] for i in issues] == [f["code"] for f in findings]
    for issue, f in zip(issues, findings, strict=True):
        path = Path(issue["location"]["path"])
        assert not path.is_absolute()  # relative to the project, where manage.py runs
        assert path == Path(f["location"]["path"])  # as the json format gives it
        assert (PROJECT / path).is_file()
        assert issue["location"]["lines"]["begin"] == f["location"]["line"]

    github = manage(
        db, "pgwarden", "lint", "--unapplied", "--format", "github", "--fail-on", "note"
    )
    assert github.returncode == 1, github.stderr
    lines = github.stdout.splitlines()
    assert len(lines) == len(findings)
    assert all(ln.startswith(("::error ", "::warning ", "::notice ")) for ln in lines)
