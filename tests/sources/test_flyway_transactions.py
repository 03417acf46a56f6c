"""Flyway decides per migration whether to run it in a transaction.

Its PostgreSQL parser marks CREATE/DROP INDEX CONCURRENTLY, VACUUM, REINDEX SCHEMA|DATABASE|
SYSTEM, CREATE/DROP DATABASE|TABLESPACE|SUBSCRIPTION, ALTER SYSTEM and DISCARD ALL
non-transactional: a migration of only those runs outside any transaction, one that mixes
them with other statements is refused ("Detected both transactional and non-transactional
statements within the same migration") unless mixed = true, which runs it without one.

Before, a `V20__idx.sql` holding only `CREATE INDEX CONCURRENTLY` got PW130 ("the migration
fails at deploy time"), and a mixed one PW121 errors for locks that no transaction holds;
`--fix` wrote files mixing SET, DO and CONCURRENTLY, which Flyway refuses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pgwarden import commands
from pgwarden.analysis.parse import parse
from pgwarden.cli import cli
from pgwarden.lint.fix import fix_plan
from pgwarden.sources.flyway import is_flyway_file, non_transactional

CIC = "CREATE INDEX CONCURRENTLY orders_x_idx ON orders (x);\n"
DROP = "DROP INDEX CONCURRENTLY IF EXISTS orders_old_idx;\n"
ALTER = "ALTER TABLE orders ADD COLUMN y int;\n"


def _codes(path: Path) -> list[tuple[str, str]]:
    _, result = commands.lint([path])
    return [(f.code, f.severity.value) for f in result.findings]


@pytest.mark.parametrize(
    ("sql", "outside"),
    [
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x)", True),
        ("DROP INDEX CONCURRENTLY i", True),
        ("REINDEX SCHEMA s", True),
        ("VACUUM t", True),
        ("DISCARD ALL", True),
        ("CREATE DATABASE d", True),
        ("ALTER SYSTEM SET work_mem = '8MB'", True),
        ("DROP SUBSCRIPTION s", True),
        ("CREATE INDEX i ON t (x)", False),
        ("REINDEX TABLE CONCURRENTLY t", False),  # not in Flyway's list: run in a transaction
        ("ANALYZE t", False),
        ("DROP INDEX i", False),
        ("SET lock_timeout = '1s'", False),
    ],
)
def test_flyway_s_list(sql: str, outside: bool) -> None:
    assert non_transactional(parse(sql + ";")[0].tree) is outside


def test_flyway_names() -> None:
    assert is_flyway_file("db/migration/V20__idx.sql")
    assert is_flyway_file("V1_1__fix.sql") and is_flyway_file("R__views.sql")
    assert not is_flyway_file("0001_idx.sql") and not is_flyway_file("V20_idx.sql")


def test_a_migration_of_only_concurrent_statements_runs_outside_a_transaction(
    tmp_path: Path,
) -> None:
    f = tmp_path / "V20__idx.sql"
    f.write_text(DROP + CIC)
    assert _codes(f) == []
    other = tmp_path / "0020_idx.sql"  # no Flyway name: a runner that wraps the file
    other.write_text(DROP + CIC)
    assert ("PW130", "warning") in _codes(other)


def test_a_mixed_migration_is_refused_by_flyway_and_holds_no_lock(tmp_path: Path) -> None:
    f = tmp_path / "V21__mixed.sql"
    f.write_text(ALTER + CIC)
    _, result = commands.lint([f])
    (pw130,) = [x for x in result.findings if x.code == "PW130"]
    assert pw130.severity.value == "warning" and pw130.location.line == 2
    assert "Flyway refuses such a migration" in pw130.message
    assert "mixed = true" in pw130.message
    assert not [x for x in result.findings if x.code == "PW121"]  # no transaction holds it
    other = tmp_path / "0021_mixed.sql"
    other.write_text(ALTER + CIC)
    assert ("PW130", "warning") in _codes(other)  # a runner assumed to wrap the file


def test_fix_leaves_flyway_migrations_as_written(tmp_path: Path) -> None:
    f = tmp_path / "V25__one.sql"
    f.write_text("CREATE INDEX orders_v_idx ON orders (v);\n")
    plan, result = commands.lint([f])
    assert any(x.code == "PW101" and x.fix is not None for x in result.findings)
    assert fix_plan(plan, result) == []


def test_fix_says_why_it_left_the_file(tmp_path: Path) -> None:
    f = tmp_path / "V25__one.sql"
    f.write_text("CREATE INDEX orders_v_idx ON orders (v);\n")
    out = CliRunner().invoke(cli, ["lint", "--fix", str(f)], terminal_width=400)
    assert out.exit_code == 1, out.output
    assert f"not rewritten: {f} is a Flyway migration" in out.output
    assert f.read_text() == "CREATE INDEX orders_v_idx ON orders (v);\n"


def test_a_statement_flyway_does_not_know_runs_in_its_transaction(tmp_path: Path) -> None:
    """REINDEX TABLE CONCURRENTLY is not on Flyway's list: Flyway wraps the migration, and
    the server refuses it there. Not an assumption about the runner: an error."""
    f = tmp_path / "V30__reindex.sql"
    f.write_text("REINDEX TABLE CONCURRENTLY orders;\n")
    _, result = commands.lint([f])
    (pw130,) = [x for x in result.findings if x.code == "PW130"]
    assert pw130.severity.value == "error"
    assert "Flyway runs in a transaction" in pw130.message
    assert "V30__reindex.sql.conf" in pw130.help and "executeInTransaction=false" in pw130.help


def test_script_config_executes_outside_a_transaction(tmp_path: Path) -> None:
    """`V31__x.sql.conf` with executeInTransaction=false (Flyway 6.1 on): no transaction,
    so neither PW130 nor Flyway's refusal of a mixed migration."""
    mixed = tmp_path / "V31__mixed.sql"
    mixed.write_text(ALTER + CIC)
    reindex = tmp_path / "V32__reindex.sql"
    reindex.write_text("REINDEX TABLE CONCURRENTLY orders;\n")
    for f in (mixed, reindex):
        Path(f"{f}.conf").write_text("# script config\nexecuteInTransaction = false\n")
    assert not [c for c in _codes(mixed) + _codes(reindex) if c[0] in ("PW130", "PW121")]
    Path(f"{reindex}.conf").write_text("executeInTransaction=true\n")
    assert ("PW130", "error") in _codes(reindex)
