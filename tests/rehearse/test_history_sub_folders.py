"""rehearse's schema history (the migrations that ran before the rehearsed one) is the
folder's order as `pgwarden lint migrations/` reads it: Flyway versions across
sub-folders, sub-folders included, and from a file in a sub-folder the migrations of the
folder above it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgwarden.rehearse.schema import earlier_migrations, resolve_schema
from pgwarden.sources.sql_files import collect_sql_files


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def _rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.resolve().relative_to(root.resolve()).as_posix() for p in paths]


FLYWAY = {
    "V1__a.sql": "CREATE TABLE accounts (id bigint PRIMARY KEY);\n",
    "sub/V2__b.sql": "ALTER TABLE accounts ADD COLUMN email text;\n",
    "V10__c.sql": "CREATE INDEX accounts_email_idx ON accounts (email);\n",
    "sub/deeper/V11__d.sql": "SELECT 1;\n",
    "R__views.sql": "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n",
}


def test_flyway_history_takes_the_earlier_versions_of_sub_folders(tmp_path: Path) -> None:
    """Before, only the rehearsed file's own folder was read: [V1__a.sql]."""
    _tree(tmp_path, FLYWAY)
    history = earlier_migrations([tmp_path / "V10__c.sql"])
    assert _rel(tmp_path, history) == ["V1__a.sql", "sub/V2__b.sql"]
    schema = resolve_schema([tmp_path / "V10__c.sql"])
    assert "ADD COLUMN email" in schema.sql
    assert schema.origin == "earlier migrations: V1__a.sql, sub/V2__b.sql"


def test_history_is_the_folder_order_lint_reads(tmp_path: Path) -> None:
    """Whatever file is rehearsed, its history is what `lint <folder>` lists before it."""
    _tree(tmp_path, FLYWAY)
    order = collect_sql_files([tmp_path])
    for i, path in enumerate(order):
        assert _rel(tmp_path, earlier_migrations([path])) == _rel(tmp_path, order[:i]), path


def test_a_file_in_a_sub_folder_has_the_folder_above_as_history(tmp_path: Path) -> None:
    """sub/V2__b.sql comes after V1__a.sql, which is in the folder above it (the Flyway
    location); before, its history was empty."""
    _tree(tmp_path, FLYWAY)
    history = earlier_migrations([tmp_path / "sub" / "V2__b.sql"])
    assert _rel(tmp_path, history) == ["V1__a.sql"]


def test_numbered_names_in_sub_folders_keep_folder_order(tmp_path: Path) -> None:
    """Plain numbered names: the folder's files, then its sub-folders by name."""
    _tree(
        tmp_path,
        dict.fromkeys(["002_a.sql", "010_b.sql", "2024/001_d.sql", "sub/001_c.sql"], "SELECT 1;\n"),
    )
    assert _rel(tmp_path, earlier_migrations([tmp_path / "sub" / "001_c.sql"])) == [
        "002_a.sql",
        "010_b.sql",
        "2024/001_d.sql",
    ]
    assert _rel(tmp_path, earlier_migrations([tmp_path / "010_b.sql"])) == ["002_a.sql"]


def test_history_stops_at_the_migrations_folder(tmp_path: Path) -> None:
    """A project's other SQL above the migrations folder (a schema dump, test data) is not
    history."""
    _tree(
        tmp_path,
        {
            "schema.sql": "CREATE TABLE other (id int);\n",
            "tests/data.sql": "SELECT 1;\n",
            "db/migration/V1__a.sql": "SELECT 1;\n",
            "db/migration/V2__b.sql": "SELECT 1;\n",
        },
    )
    history = earlier_migrations([tmp_path / "db" / "migration" / "V2__b.sql"])
    assert _rel(tmp_path, history) == ["db/migration/V1__a.sql"]


def test_rehearse_runs_on_the_history_of_sub_folders(run: Any, tmp_path: Path) -> None:
    """The index on email is built: before, the history left out sub/V2__b.sql and the
    step failed with 42703 column "email" does not exist."""
    root = tmp_path / "migrations"
    _tree(root, FLYWAY)
    result = run([root / "V10__c.sql"], schema_sql=None, default_rows=100)
    assert result.schema_source == "earlier migrations: V1__a.sql, sub/V2__b.sql"
    assert [s.status for s in result.steps] == ["ok"], result.steps
    assert result.status == "completed"
