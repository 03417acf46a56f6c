"""Runners that send a migration file to the server as one query: Prisma Migrate
(`prisma/migrations/<timestamp>_<name>/migration.sql`) and Mattermost's morph with
`-- morph:nontransactional`.

A query of one statement runs on its own, outside any transaction block; a query of several
runs them as one implicit transaction. So a file whose only statement is CREATE INDEX
CONCURRENTLY runs (before: PW130 said it fails at deploy, on cal.com's and Mattermost's
single-statement index migrations), and one with another statement next to it fails; both
checked on the server below (the simple query protocol, as the runners send it).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden import commands

INDEX = 'CREATE INDEX CONCURRENTLY "Booking_uid_idx" ON "Booking" ("uid");\n'
OTHER = 'ALTER TABLE "Booking" ADD COLUMN "note" text;\n'


def _pw130(path: Path) -> list[str]:
    _, result = commands.lint([path])
    found = [f for f in result.findings if f.code == "PW130"]
    for f in found:
        if path.read_text().startswith("-- morph") or path.name == "migration.sql":
            assert "sends as one query (as Prisma Migrate, golang-migrate, bun" in f.message
            assert "as its only statement" in f.help
    return [f.severity.value for f in found]


def _prisma(root: Path, sql: str) -> Path:
    folder = root / "prisma" / "migrations" / "20240501093000_booking_uid_index"
    folder.mkdir(parents=True)
    (folder / "migration.sql").write_text(sql)
    return folder / "migration.sql"


def test_prisma_file_of_one_concurrent_build_runs_outside_a_transaction(tmp_path: Path) -> None:
    assert _pw130(_prisma(tmp_path / "one", INDEX)) == []
    assert _pw130(_prisma(tmp_path / "two", OTHER + INDEX)) == ["error"]  # sure to fail


def test_morph_nontransactional_file_of_one_statement(tmp_path: Path) -> None:
    up = tmp_path / "000118_create_index_booking.up.sql"
    up.write_text("-- morph:nontransactional\n" + INDEX)
    assert _pw130(up) == []
    up.write_text("-- morph:nontransactional\n" + OTHER + INDEX)
    assert _pw130(up) == ["error"]  # one query of two statements: sure to fail
    up.write_text(INDEX)  # no header: morph wraps the file in a transaction
    assert _pw130(up) == ["warning"]


def test_one_query_runs_alone_and_several_as_one_transaction(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute('CREATE TABLE "Booking" (id bigint PRIMARY KEY, uid text)')
        c.execute(INDEX.encode(), prepare=False)  # bytes, no parameters: simple query
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            c.execute((OTHER + INDEX.replace("uid_idx", "uid2_idx")).encode())


def test_fix_leaves_files_sent_as_one_query(tmp_path: Path) -> None:
    """A fix writes SET lock_timeout and a DO block next to CREATE INDEX CONCURRENTLY: sent
    as one query (Prisma), that file would fail at deploy ('cannot run inside a transaction
    block'); so --fix leaves it and says why."""
    from click.testing import CliRunner

    from pgwarden.cli import cli

    migration = _prisma(tmp_path, 'CREATE INDEX "Booking_uid_idx" ON "Booking" ("uid");\n')
    before = migration.read_text()
    out = CliRunner().invoke(cli, ["lint", "--fix", str(migration)], terminal_width=400)
    assert out.exit_code == 1, out.output
    assert f"not rewritten: {migration} is sent to the server as one query" in out.output
    assert migration.read_text() == before


def test_prisma_folder_of_any_name_beside_its_migration_lock(tmp_path: Path) -> None:
    """Prisma takes any folder name (umami's `17_remove_duplicate_key`): a `migration.sql`
    whose migrations folder holds Prisma's `migration_lock.toml` is Prisma's, sent as one
    query (before: read as a plain file, and --fix rewrote it into SET, a DO block and
    CONCURRENTLY statements that fail as one query)."""
    migrations = tmp_path / "prisma" / "migrations"
    folder = migrations / "17_remove_duplicate_key"
    folder.mkdir(parents=True)
    migration = folder / "migration.sql"
    migration.write_text(INDEX)
    _, result = commands.lint([migration])  # no lock file: a plain file
    assert [f.severity.value for f in result.findings if f.code == "PW130"] == ["warning"]
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    from pgwarden.sources.updown import _prisma_lock

    _prisma_lock.cache_clear()
    assert _pw130(migration) == []  # one query of one statement: runs
    migration.write_text(OTHER + INDEX)
    assert _pw130(migration) == ["error"]


def test_printed_fix_of_a_one_query_index_build_is_the_build_alone(tmp_path: Path) -> None:
    """A Prisma file of one CREATE INDEX: PW101's fix (CONCURRENTLY) must stay the file's
    only statement, so PW120 offers no SET beside it and says to set lock_timeout for the
    role (the printed fix was SET + CREATE INDEX CONCURRENTLY, which fails as one query:
    trigger.dev, from the real-project sweep)."""
    migration = _prisma(tmp_path, 'CREATE UNIQUE INDEX "Job_key" ON "Job" ("key");\n')
    _, result = commands.lint([migration])
    by_code = {f.code: f for f in result.findings}
    assert by_code["PW101"].fix is not None
    assert by_code["PW120"].fix is None
    assert "ALTER ROLE <role> SET lock_timeout" in by_code["PW120"].help
    other = _prisma(tmp_path / "b", 'ALTER TABLE "Job" ADD COLUMN "note" text;\n')
    _, result = commands.lint([other])
    assert [f.fix is not None for f in result.findings if f.code == "PW120"] == [True]
