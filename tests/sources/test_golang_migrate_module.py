"""golang-migrate's `*.up.sql` files, told apart by the go.mod above them.

golang-migrate sends a file as one query: a file of one CREATE INDEX CONCURRENTLY runs
outside any transaction (ente's `123_*.up.sql`, from the real-project sweep, was a PW130
warning). sqlx (Rust) and Mattermost's morph wrap the same-named file in a transaction,
where it fails; without a go.mod that says which, PW130 stays a warning and its help
names the ambiguity.
"""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.sources.gomodule import go_migration_library

INDEX = "CREATE INDEX CONCURRENTLY files_owner_idx ON files (owner_id);\n"
OTHER = "ALTER TABLE files ADD COLUMN note text;\n"
GO_MOD = "module example.com/server\n\ngo 1.22\n\nrequire (\n\t{}\n)\n"


def _project(root: Path, requires: str | None, sql: str) -> Path:
    root.mkdir(parents=True)
    (root / ".git").mkdir()
    if requires is not None:
        (root / "go.mod").write_text(GO_MOD.format(requires))
    folder = root / "pkg" / "db" / "migrations"
    folder.mkdir(parents=True)
    up = folder / "000123_files_owner_idx.up.sql"
    up.write_text(sql)
    return up


def _pw130(path: Path) -> list[tuple[str, str]]:
    _, result = commands.lint([path])
    return [(f.severity.value, f.help) for f in result.findings if f.code == "PW130"]


def test_golang_migrate_module_runs_a_lone_concurrent_build(tmp_path: Path) -> None:
    dep = "github.com/golang-migrate/migrate/v4 v4.17.0"
    up = _project(tmp_path / "ente", dep, INDEX)
    assert go_migration_library(str(up)) == "golang-migrate"
    assert _pw130(up) == []
    up.write_text(OTHER + INDEX)  # one query of two statements: one implicit transaction
    assert [s for s, _ in _pw130(up)] == ["error"]


def test_morph_module_wraps_for_sure_and_no_module_keeps_the_warning(tmp_path: Path) -> None:
    """morph runs a `*.up.sql` in a transaction unless it says -- morph:nontransactional:
    with go.mod requiring morph alone, PW130 is an error naming morph's marker."""
    morph = _project(tmp_path / "mm", "github.com/mattermost/morph v1.1.0", INDEX)
    assert go_migration_library(str(morph)) == "morph"
    ((severity, help_),) = _pw130(morph)
    assert severity == "error" and "-- morph:nontransactional" in help_
    none = _project(tmp_path / "plain", None, INDEX)
    assert go_migration_library(str(none)) is None
    both = _project(
        tmp_path / "both",
        "github.com/golang-migrate/migrate/v4 v4.17.0\n\tgithub.com/mattermost/morph v1.1.0",
        INDEX,
    )
    assert go_migration_library(str(both)) is None
    for up in (none, both):
        ((severity, help_),) = _pw130(up)
        assert severity == "warning"
        assert "golang-migrate sends a *.up.sql file as one query" in help_


def test_the_configuration_names_the_runner_where_no_go_mod_says(tmp_path: Path) -> None:
    """The migrate CLI (or its Docker image) runs folders with no go.mod above them:
    `up_sql_runner = "golang-migrate"` says what the names cannot."""
    import pytest

    from pgwarden.errors import ConfigError
    from pgwarden.settings import load_settings

    up = _project(tmp_path / "cli", None, INDEX)
    two = up.with_name("000124_two.up.sql")
    two.write_text(OTHER + INDEX)
    config = tmp_path / "pgwarden.toml"
    config.write_text('up_sql_runner = "golang-migrate"\n')
    settings = load_settings(config)
    assert settings.up_sql_runner == "golang-migrate"
    _, result = commands.lint([up, two], settings=settings)
    found = [(f.location.path, f.severity.value) for f in result.findings if f.code == "PW130"]
    assert found == [(str(two), "error")]  # the lone build runs; the pair fails for sure
    config.write_text('up_sql_runner = "flyway"\n')
    with pytest.raises(ConfigError, match="up_sql_runner must be one of golang-migrate"):
        load_settings(config)


def test_bun_runs_parts_apart_and_only_tx_files_in_a_transaction(tmp_path: Path) -> None:
    """uptrace/bun: a `*.up.sql` runs without a transaction, each `--bun:split` part as
    one query; a `*.tx.up.sql` in one transaction (zep's migrations, from the real-project
    sweep, got a PW121 error for a lock no transaction holds)."""
    alter = "ALTER TABLE session ADD COLUMN user_id uuid;\n"
    index = "CREATE INDEX session_user_id_idx ON session (user_id);\n"
    split = _project(
        tmp_path / "zep", "github.com/uptrace/bun v1.1.17", alter + "--bun:split\n" + index
    )
    assert go_migration_library(str(split)) == "bun"
    _, result = commands.lint([split])
    assert {f.code for f in result.findings} >= {"PW101"}
    assert "PW121" not in {f.code for f in result.findings}
    whole = split.with_name("000125_whole.up.sql")  # no split: one query
    whole.write_text(OTHER + INDEX)
    assert [s for s, _ in _pw130(whole)] == ["error"]
    tx = split.with_name("000126_tx.tx.up.sql")  # bun's transaction
    tx.write_text(alter + "--bun:split\n" + index)
    _, result = commands.lint([tx])
    assert "PW121" in {f.code for f in result.findings}


def test_fix_leaves_a_bun_file_the_configuration_names(tmp_path: Path) -> None:
    """`up_sql_runner = "bun"` (no go.mod) reads a split `*.up.sql` as bun runs it, and
    --fix leaves it as written, as it does when go.mod says bun: a fix's BEGIN, SET and
    DO block would be cut apart by the `--bun:split` lines. Before, --fix asked only go.mod
    and rewrote the file."""
    from click.testing import CliRunner

    from pgwarden.cli import cli

    alter = "ALTER TABLE session ADD COLUMN user_id uuid;\n"
    index = "CREATE INDEX session_user_id_idx ON session (user_id);\n"
    up = _project(tmp_path / "zep", None, alter + "--bun:split\n" + index)
    before = up.read_text()
    config = tmp_path / "zep" / "pgwarden.toml"
    config.write_text('up_sql_runner = "bun"\n')
    out = CliRunner().invoke(
        cli, ["lint", "--fix", "--config", str(config), str(up)], terminal_width=400
    )
    assert out.exit_code == 1, out.output
    assert "PW121" not in out.output  # read as bun runs it
    assert f"not rewritten: {up} is sent to the server as one query" in out.output
    assert up.read_text() == before


def test_fix_leaves_up_sql_files_their_tool_wraps(tmp_path: Path) -> None:
    """sqlx, morph and pop run a `*.up.sql` file inside their transaction, diesel an
    `up.sql`: a fix's BEGIN ... COMMIT would end the tool's transaction and its CONCURRENTLY
    statements fail there (the supabase/auth sweep: pop). --fix leaves them and says why;
    before, it rewrote them with its own no-file-transaction marker, which lint believed."""
    from click.testing import CliRunner

    from pgwarden.cli import cli

    sql = OTHER + "CREATE INDEX files_owner_idx ON files (owner_id);\n"
    pop = _project(tmp_path / "auth", "github.com/gobuffalo/pop/v6 v6.1.1", sql)
    plain = _project(tmp_path / "sqlx", None, sql)
    diesel = tmp_path / "diesel" / "migrations" / "2024-01-01-000000_owner" / "up.sql"
    diesel.parent.mkdir(parents=True)
    diesel.write_text(sql)
    for path in (pop, plain, diesel):
        out = CliRunner().invoke(cli, ["lint", "--fix", str(path)], terminal_width=400)
        assert out.exit_code == 1, out.output
        assert f"not rewritten: {path} is run by its migration tool inside a transaction" in (
            out.output
        )
        assert path.read_text() == sql


def test_maragudk_migrate_always_wraps(tmp_path: Path) -> None:
    """maragudk/migrate runs every migration in a transaction (apply: inTransaction, no
    option): CONCURRENTLY there fails for sure (harness's 0121, the real-project sweep:
    a warning)."""
    up = _project(tmp_path / "harness", "github.com/maragudk/migrate v0.4.3", INDEX)
    assert go_migration_library(str(up)) == "maragudk/migrate"
    ((severity, help_),) = _pw130(up)
    assert severity == "error" and "maragudk/migrate runs every migration in a transaction" in help_


def test_held_locks_name_the_transaction_the_tool_makes(tmp_path: Path) -> None:
    """PW121 says whose transaction holds the lock: the one query golang-migrate sends, or
    the transaction goose runs a migration in, not 'the runner wraps each file'."""
    backfill = OTHER + "UPDATE files SET note = '';\n"
    gm = _project(tmp_path / "gm", "github.com/golang-migrate/migrate/v4 v4.17.0", backfill)
    goose = tmp_path / "00002_note.sql"
    goose.write_text(f"-- +goose Up\n{backfill}\n-- +goose Down\nSELECT 1;\n")
    words = {
        gm: "a query of several statements runs as (the tool sends this file to the server",
        goose: "inside the transaction goose runs the migration in",
    }
    for path, said in words.items():
        _, result = commands.lint([path])
        (f,) = [f for f in result.findings if f.code == "PW121"]
        assert said in f.message, f.message


def test_bun_tx_file_wraps_for_sure(tmp_path: Path) -> None:
    """bun runs a `*.tx.up.sql` in one transaction: CONCURRENTLY there fails for sure."""
    up = _project(tmp_path / "zep", "github.com/uptrace/bun v1.1.17", INDEX)
    tx = up.with_name("000127_index.tx.up.sql")
    tx.write_text(INDEX)
    ((severity, help_),) = _pw130(tx)
    assert severity == "error" and "not *.tx.up.sql" in help_


def test_each_bun_split_part_is_one_query(tmp_path: Path) -> None:
    """bun sends each --bun:split part as one query (migrate/migration.go: one ExecContext
    per part): a part of several statements runs as one implicit transaction, where
    CONCURRENTLY fails for sure and an ALTER's lock is held through the UPDATE after it
    (a new user's check: neither was found; pg_locks shows the lock held)."""
    sql = (
        "ALTER TABLE files ADD COLUMN IF NOT EXISTS note2 text;\n\n--bun:split\n\n"
        "SET lock_timeout = 2000;\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS files_note2_idx ON files (note2);\n"
        "\n--bun:split\n\n"
        "ALTER TABLE users ADD COLUMN score int;\nUPDATE users SET score = 0;\n"
    )
    up = _project(tmp_path / "zep", "github.com/uptrace/bun v1.1.17", sql)
    _, result = commands.lint([up])
    found = {(f.code, f.location.line, f.severity.value) for f in result.findings}
    assert ("PW130", 6, "error") in found
    assert ("PW121", 11, "error") in found
    assert not [f for f in result.findings if f.code == "PW121" and f.location.line < 11]
