"""CI-native output: no hard wrap when piped, a rule page per finding, GitLab Code Quality."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PGWARDEN = [sys.executable, "-c", "from pgwarden.cli import main; main()"]
SQL = (
    "CREATE INDEX invoices_created_at_and_status_and_payment_account_idx "
    "ON invoices (created_at, status, payment_account_id);\n"
    "ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive CHECK (amount_cents > 0);\n"
    "ALTER TABLE invoices ALTER COLUMN status TYPE varchar(3);\n"
)


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}  # no COLUMNS, no terminal
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [*PGWARDEN, "lint", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _project(tmp_path: Path) -> Path:
    mig = tmp_path / "db" / "migrations" / "0002_a_rather_long_migration_file_name_for_ci_logs"
    mig.mkdir(parents=True)
    (mig / "up.sql").write_text(SQL)
    return mig / "up.sql"


def test_piped_text_is_not_wrapped_and_names_the_rule_page(tmp_path: Path) -> None:
    f = _project(tmp_path)
    rel = f.relative_to(tmp_path).as_posix()
    proc = _lint(tmp_path, rel)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    header = f"{rel}:1:1: error PW101 index-built-without-concurrently"
    assert header in lines  # one line although longer than 80 columns
    assert len(header) > 80
    fix = (
        "    CREATE INDEX CONCURRENTLY invoices_created_at_and_status_and_payment_account_idx "
        "ON invoices (created_at, status, payment_account_id);"
    )
    assert fix in lines, proc.stdout  # the fix SQL intact
    docs = [ln.removeprefix("  docs: ") for ln in lines if ln.startswith("  docs: ")]
    assert len(docs) == len([ln for ln in lines if ln.startswith(rel + ":")])
    for url in docs:  # each names a page of this repository's docs/rules/
        page = url.split("/blob/main/", 1)[1]
        assert (ROOT / page).is_file(), url


def test_gitlab_code_quality_report(tmp_path: Path) -> None:
    f = _project(tmp_path)
    proc = _lint(tmp_path, "--format", "gitlab", str(f))  # an absolute path, made relative
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    text = _lint(tmp_path, "--format", "json", str(f))
    findings = json.loads(text.stdout)["findings"]
    assert len(report) == len(findings) > 2
    severities = {"error": "critical", "warning": "major", "note": "minor"}
    for issue, finding in zip(report, findings, strict=True):
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert issue["severity"] == severities[finding["severity"]]
        assert issue["check_name"] == finding["code"]
        assert finding["message"] in issue["description"]
        assert issue["location"] == {
            "path": f.relative_to(tmp_path).as_posix(),
            "lines": {"begin": finding["location"]["line"]},
        }
    assert len({i["fingerprint"] for i in report}) == len(report)
    # A finding keeps its fingerprint when lines are added above it.
    f.write_text("-- a comment\n\n" + SQL)
    moved = json.loads(_lint(tmp_path, "--format", "gitlab", str(f)).stdout)
    assert [i["fingerprint"] for i in moved] == [i["fingerprint"] for i in report]
    assert [i["location"]["lines"]["begin"] for i in moved] == [
        i["location"]["lines"]["begin"] + 2 for i in report
    ]
