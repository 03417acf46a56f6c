"""Lint cost stays linear in the input (issue #12.12).

Each input below made an earlier version quadratic or worse (minutes instead of
about a second); the subprocess timeout is a hang guard, not a timing assertion.
bench/scale.py measures the actual growth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pgwarden.commands import lint

HANG_GUARD_S = 90


def _lint_json(path: Path) -> dict[str, object]:
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", "lint", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, object] = json.loads(r.stdout)
    return out


def test_many_ignore_comments(tmp_path: Path) -> None:
    n = 8000
    path = tmp_path / "m.sql"
    path.write_text(
        "".join(
            f"-- pgwarden: ignore PW101 small table\nCREATE INDEX i{i} ON t (a);\n"
            for i in range(n)
        )
    )
    summary = _lint_json(path)["summary"]
    assert isinstance(summary, dict)
    assert summary["suppressed"] == n
    assert summary["statements"] == n


def test_many_renames_and_schema_drops(tmp_path: Path) -> None:
    n = 20000
    path = tmp_path / "m.sql"
    path.write_text(
        "".join(f"ALTER TABLE t{i} RENAME TO u{i};\nDROP SCHEMA s{i} CASCADE;\n" for i in range(n))
        + "CREATE VIEW t0 AS SELECT * FROM u0;\n"
    )
    findings = _lint_json(path)["findings"]
    assert isinstance(findings, list)
    codes = [f["code"] for f in findings]
    assert codes.count("PW204") == n - 1  # t0 is bridged by the view
    assert codes.count("PW206") == n


def test_many_enum_values_in_one_transaction(tmp_path: Path) -> None:
    n = 5000
    path = tmp_path / "m.sql"
    path.write_text(
        "BEGIN;\n"
        + "".join(f"ALTER TYPE mood ADD VALUE 'v{i}';\n" for i in range(n))
        + "UPDATE person SET mood = 'v7';\nCOMMIT;\n"
    )
    findings = _lint_json(path)["findings"]
    assert isinstance(findings, list)
    assert [f["location"]["line"] for f in findings if f["code"] == "PW131"] == [9]


def test_suppression_targets(tmp_path: Path) -> None:
    """Which statement an ignore comment applies to, wherever it stands."""
    path = tmp_path / "m.sql"
    path.write_text(
        "-- pgwarden: ignore PW101 before the statement\n"  # line 1 -> step 0
        "CREATE INDEX a ON t (x);\n"
        "CREATE INDEX b\n"  # step 1, lines 3-4
        "  ON t (x); -- pgwarden: ignore PW101 trailing, last line\n"
        "BEGIN;\n"  # step 2
        "CREATE INDEX c ON t (x); CREATE INDEX d ON t (x); -- pgwarden: ignore PW101 same line\n"
        "-- pgwarden: ignore PW120 inside the block\n"
        "CREATE INDEX e ON t (x);\n"  # step 5
        "COMMIT;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"  # step 7, lines 10-13
        "BEGIN\n"
        "  RETURN 1; -- pgwarden: ignore PW101 inside a body\n"
        "END; $$;\n"
        "-- pgwarden: ignore PW101\n"  # no reason, nothing follows
    )
    _, result = lint([path])
    got = sorted((s.location.line, s.step, f.code) for f, s in result.suppressed)
    assert got == [(1, 0, "PW101"), (4, 1, "PW101"), (6, 4, "PW101"), (7, 5, "PW120")]
    pw900 = [(f.location.line, f.step) for f in result.findings if f.code == "PW900"]
    assert pw900 == [(14, None)]
