"""sql-migrate (rubenv/sql-migrate) files: `-- +migrate Up` / `-- +migrate Down` halves in
one file, `-- +migrate Up notransaction` to run the up half outside a transaction. Only
the up half is linted (as for goose and dbmate); before, the whole file was, so a down
half's statements were reported as if they ran, and CONCURRENTLY in a notransaction file
was said to fail in a transaction."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.sources.updown import split_halves

INDEX = "CREATE INDEX CONCURRENTLY users_email ON users (email);\n"


def _findings(path: Path) -> list[tuple[str, int]]:
    _, result = commands.lint([path])
    return [(f.code, f.location.line) for f in result.findings]


def test_only_the_up_half_is_linted(tmp_path: Path) -> None:
    path = tmp_path / "20260101120000_nickname.sql"
    path.write_text(
        "-- +migrate Up\nSET lock_timeout = '1s';\n"
        "ALTER TABLE users RENAME COLUMN nick TO name;\n\n"
        "-- +migrate Down\nALTER TABLE users RENAME COLUMN name TO nick;\nDROP TABLE audit;\n"
    )
    halves = split_halves(path.read_text())
    assert "RENAME COLUMN nick TO name" in halves.up and "DROP TABLE" not in halves.up
    assert "DROP TABLE audit" in (halves.down or "") and not halves.no_transaction
    found = _findings(path)
    assert ("PW203", 3) in found, found  # the up half's rename
    assert not [line for _, line in found if line > 4], found  # nothing from the down half


def test_notransaction_runs_the_up_half_outside_a_transaction(tmp_path: Path) -> None:
    alone = tmp_path / "20260102120000_index.sql"
    alone.write_text(f"-- +migrate Up notransaction\n{INDEX}\n-- +migrate Down\nSELECT 1;\n")
    assert split_halves(alone.read_text()).no_transaction
    assert "PW130" not in {code for code, _ in _findings(alone)}
    wrapped = tmp_path / "20260103120000_index.sql"
    wrapped.write_text(f"-- +migrate Up\n{INDEX}\n-- +migrate Down\nSELECT 1;\n")
    assert ("PW130", 2) in _findings(wrapped)  # sql-migrate wraps it in a transaction


def test_fix_marks_the_up_half_notransaction_and_keeps_the_down_half(tmp_path: Path) -> None:
    down = "-- +migrate Down\nDROP INDEX users_email;\n"
    path = tmp_path / "20260104120000_index.sql"
    path.write_text(f"-- +migrate Up\nCREATE INDEX users_email ON users (email);\n\n{down}")
    plan, result = commands.lint([path])
    write_fixes(fix_plan(plan, result))
    fixed = path.read_text()
    assert fixed.startswith("-- +migrate Up notransaction\n") and fixed.endswith(down), fixed
    assert "CREATE INDEX CONCURRENTLY" in fixed and split_halves(fixed).no_transaction
    assert _findings(path) == []
