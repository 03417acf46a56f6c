"""Files linted together: each is one migration, and without stats an earlier one may have
run long ago, so what it created is known (columns, types) but no longer new and empty."""

from __future__ import annotations

from pathlib import Path

from pgwarden.analysis.context import load_snapshot
from pgwarden.commands import Context, lint

ROOT = Path(__file__).resolve().parents[2]
STATS = load_snapshot(ROOT / "tests" / "rules" / "cases" / "demo-stats.json")
WITH_STATS = Context(STATS, STATS.catalog, 15, "snapshot")

CREATE = "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(50), legacy text);\n"
LATER = (
    "ALTER TABLE t ALTER COLUMN name TYPE varchar(100);\n"  # in place: the type is known
    "ALTER TABLE t ALTER COLUMN id TYPE int;\n"
    "CREATE INDEX t_name ON t (name);\n"
)


def _errors(paths: list[Path], context: Context | None = None) -> dict[tuple[str, int], str]:
    """(file, line) -> the error findings there, as `CODE message` lines."""
    _, result = lint(paths, context=context)
    out: dict[tuple[str, int], str] = {}
    for f in result.findings:
        if f.severity.value == "error":
            where = (Path(f.location.path).name, f.location.line)
            out[where] = "\n".join(filter(None, [out.get(where), f"{f.code} {f.message}"]))
    return out


def test_a_table_an_earlier_file_created_is_judged_as_existing(tmp_path: Path) -> None:
    (tmp_path / "V1__create.sql").write_text(CREATE)
    (tmp_path / "V2__change.sql").write_text(LATER)
    errors = _errors([tmp_path / "V1__create.sql", tmp_path / "V2__change.sql"])
    assert ("V2__change.sql", 1) not in errors  # varchar(50) -> varchar(100): known, in place
    assert errors[("V2__change.sql", 2)].startswith("PW104")
    assert "bigint -> integer" in errors[("V2__change.sql", 2)]
    assert "created by" in errors[("V2__change.sql", 2)]
    assert "V1__create.sql, an earlier migration" in errors[("V2__change.sql", 2)]
    assert "PW101 builds an index" in errors[("V2__change.sql", 3)]


def test_the_same_file_still_creates_a_new_table(tmp_path: Path) -> None:
    (tmp_path / "V1__both.sql").write_text(CREATE + LATER)
    assert _errors([tmp_path / "V1__both.sql"]) == {}


def test_with_stats_a_table_missing_from_the_snapshot_is_new(tmp_path: Path) -> None:
    # The snapshot decides: the table is not there, so no file creating it has run.
    (tmp_path / "V1__create.sql").write_text(CREATE)
    (tmp_path / "V2__change.sql").write_text(LATER)
    assert _errors([tmp_path / "V1__create.sql", tmp_path / "V2__change.sql"], WITH_STATS) == {}


def test_a_column_an_earlier_file_added_may_be_in_use(tmp_path: Path) -> None:
    (tmp_path / "V1__add.sql").write_text("ALTER TABLE invoices ADD COLUMN memo text;\n")
    (tmp_path / "V2__drop.sql").write_text("ALTER TABLE invoices DROP COLUMN memo;\n")
    paths = [tmp_path / "V1__add.sql", tmp_path / "V2__drop.sql"]
    assert ("V2__drop.sql", 1) in _errors(paths)  # no stats: V1 may have run long ago
    (tmp_path / "V3__both.sql").write_text(
        "ALTER TABLE invoices ADD COLUMN memo2 text;\nALTER TABLE invoices DROP COLUMN memo2;\n"
    )
    assert _errors([tmp_path / "V3__both.sql"]) == {}  # added and dropped in one migration


def test_with_stats_a_column_the_catalog_shows_was_added_by_a_migration_that_ran(
    tmp_path: Path,
) -> None:
    # invoices.status is in the snapshot's catalog: V1 already ran, and code may use it.
    (tmp_path / "V1__add.sql").write_text("ALTER TABLE invoices ADD COLUMN status text;\n")
    (tmp_path / "V2__drop.sql").write_text("ALTER TABLE invoices DROP COLUMN status;\n")
    errors = _errors([tmp_path / "V1__add.sql", tmp_path / "V2__drop.sql"], WITH_STATS)
    assert "PW202" in errors[("V2__drop.sql", 1)]
