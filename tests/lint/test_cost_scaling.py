"""Lint cost stays linear in the input (issue #12.12).

Each input below made an earlier version quadratic or worse (minutes instead of
about a second); the subprocess timeout is a hang guard, not a timing assertion.
bench/scale.py measures the actual growth.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import lint
from pgwarden.errors import SqlParseError
from pgwarden.lint.fix import fix_plan
from pgwarden.plan import Step

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
        "-- pgwarden: ignore PW101 inside the block\n"
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
    assert got == [(1, 0, "PW101"), (4, 1, "PW101"), (6, 4, "PW101"), (7, 5, "PW101")]
    pw900 = [(f.location.line, f.step) for f in result.findings if f.code == "PW900"]
    assert pw900 == [(14, None)]


def test_finding_locations_in_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "m.sql"
    path.write_text(
        "SELECT 1;\n" * 50_000
        + "BEGIN;\n  CREATE INDEX a ON t (x);\n"
        + "DO $$ BEGIN PERFORM 1; END $$; ALTER TABLE t\n  DROP COLUMN c;\nCOMMIT;\n"
    )
    _, result = lint([path])
    got = sorted({(f.code, str(f.location)) for f in result.findings if f.code != "PW120"})
    assert got == [("PW101", f"{path}:50002:3"), ("PW202", f"{path}:50003:32")]


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("SELECT 1;\n" * 50_000 + "SELECT 1;\n  SELEC 2;\n", "<sql>:50002:3"),
        ("SELECT 1;\n" * 50_000 + "SELECT 'a;b' FROM t WHERE;\n", "<sql>:50001:26"),
        ("SELECT 1; 42;\n", "<sql>:1:11"),  # the scanner alone would drop `42`
        ("SELECT 1;\nCOPY t FROM stdin;\n1\t2\n", "<sql>:3:1"),
    ],
)
def test_parse_error_location_in_a_large_file(sql: str, where: str) -> None:
    with pytest.raises(SqlParseError) as exc:
        parse(sql)
    assert str(exc.value).startswith(where), str(exc.value)


def test_statement_boundaries() -> None:
    sql = (
        "-- lead\nSELECT 1;\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $b$ BEGIN; RETURN 1; END $b$;\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n"
        "/* a /* nested */ comment */ SELECT 'x;y' ; ;\n"
        "BEGIN; SELECT 2; COMMIT"
    )
    got = [(s.kind, sql[s.start : s.end], s.text) for s in parse(sql)]
    assert [k for k, _, _ in got] == [
        "SelectStmt",
        "CreateFunctionStmt",
        "CreateFunctionStmt",
        "SelectStmt",
        "TransactionStmt",
        "SelectStmt",
        "TransactionStmt",
    ]
    assert all(piece == text for _, piece, text in got)
    assert got[0][2] == "SELECT 1"
    assert got[2][2].endswith("SELECT 2; END")
    assert got[3][2] == "SELECT 'x;y'"


class _CountingSteps(tuple[Step, ...]):
    """A plan's steps that count how often they are walked."""

    walks = 0

    def __iter__(self) -> Iterator[Step]:
        _CountingSteps.walks += 1
        return super().__iter__()


def test_fix_walks_the_plan_a_fixed_number_of_times(tmp_path: Path) -> None:
    """--fix on many files walks the steps a few times, not once per file (quadratic)."""
    for f in range(200):
        (tmp_path / f"{f:03d}.sql").write_text(f"CREATE INDEX i{f} ON invoices (a);\nSELECT {f};\n")
    plan, result = lint([tmp_path])
    _CountingSteps.walks = 0
    counted = dataclasses.replace(plan, steps=_CountingSteps(plan.steps))
    fixes = fix_plan(counted, result)
    assert len(fixes) == 200
    assert all("CREATE INDEX CONCURRENTLY" in fx.new for fx in fixes)
    assert _CountingSteps.walks < 20


def test_long_transaction_findings_stay_small(tmp_path: Path) -> None:
    """PW121 names the first few earlier locks and counts the rest (the output was quadratic)."""
    n = 300
    path = tmp_path / "m.sql"
    path.write_text(
        "BEGIN;\n"
        + "".join(f"ALTER TABLE t{i} ALTER COLUMN a TYPE bigint;\n" for i in range(n))
        + "COMMIT;\n"
    )
    _, result = lint([path])
    pw121 = [f for f in result.findings if f.code == "PW121"]
    assert len(pw121) == n - 1
    last = pw121[-1].message
    assert last.startswith(
        "ACCESS EXCLUSIVE on t0 (blocks reads and writes), taken at line 2 and ACCESS EXCLUSIVE "
        "on t1 (blocks reads and writes), taken at line 3 and ACCESS EXCLUSIVE on t2 (blocks "
        "reads and writes), taken at line 4 and 296 more such locks, are still held while this "
        "statement rewrites t299"
    ), last
    assert last.endswith("(and 296 more tables)")
    assert max(len(f.message) for f in pw121) < 1000


def test_many_slow_statements_in_one_file_transaction(tmp_path: Path) -> None:
    """PW121/PW102 keep what a transaction holds up to date instead of rescanning it per step."""
    n = 15000
    path = tmp_path / "m.sql"
    path.write_text(
        "".join(
            f"CREATE INDEX i{i} ON t{i} (a);\n"
            f"ALTER TABLE t{i} ADD CONSTRAINT f{i} FOREIGN KEY (a) REFERENCES p (id);\n"
            for i in range(n)
        )
    )
    findings = _lint_json(path)["findings"]
    assert isinstance(findings, list)
    pw121 = [f for f in findings if f["code"] == "PW121"]
    assert len(pw121) == 2 * n - 2
    assert pw121[-1]["message"].startswith(
        "SHARE ROW EXCLUSIVE on t0 (blocks writes), taken at line 2 and SHARE ROW EXCLUSIVE on "
        "t1 (blocks writes), taken at line 4 and SHARE ROW EXCLUSIVE on t2 (blocks writes), "
        f"taken at line 6 and {n - 4:,} more such locks, are still held while this statement "
        f"reads all of t{n - 1}, p "
    ), pw121[-1]["message"][:300]


def test_many_schema_renames_and_database_drops(tmp_path: Path) -> None:
    n = 20000
    path = tmp_path / "m.sql"
    path.write_text(
        "CREATE SCHEMA s1;\nCREATE DATABASE d1;\n"
        + "".join(f"ALTER SCHEMA s{i} RENAME TO z{i};\nDROP DATABASE d{i};\n" for i in range(n))
    )
    findings = _lint_json(path)["findings"]
    assert isinstance(findings, list)
    codes = [f["code"] for f in findings]
    assert codes.count("PW209") == n - 1  # s1 was created by this plan
    assert codes.count("PW210") == n - 1
