"""A stats file with a value of the wrong type (hand-edited, damaged) is refused as it
is loaded: one message naming the file, the key and what it must hold, exit 2, no
traceback. Before, `"rows": "lots"` or a list where an object belongs passed the load
and `pgwarden lint --stats` died with an internal TypeError or AttributeError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from pgwarden.pg.cluster import Cluster
from tests.cli.test_errors import assert_clean_error, run
from tests.fixtures.pg import new_database

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, x int, note text);
CREATE TABLE entries (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts,
                      amount int CHECK (amount > 0));
CREATE INDEX entries_account_idx ON entries (account_id);
CREATE VIEW big_entries AS SELECT id, amount FROM entries WHERE amount > 100;
INSERT INTO accounts SELECT g, g % 7, 'n' || g FROM generate_series(1, 12000) g;
ANALYZE;
"""

Edit = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _relation(name: str, key: str, value: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        rel = next(r for r in data["catalog"]["relations"] if r["name"] == name)
        rel[key] = value

    return edit


CASES: dict[str, tuple[Edit, tuple[str, ...]]] = {
    "rows_a_string": (
        _set(["stats", "tables", "accounts", "rows"], "lots"),
        ('stats.tables["accounts"].rows', "expected an integer", 'found the string "lots"'),
    ),
    "writes_per_s_a_string": (
        _set(["stats", "tables", "accounts", "writes_per_s"], "many"),
        ('stats.tables["accounts"].writes_per_s', "expected a number or null"),
    ),
    "tables_a_list": (
        _set(["stats", "tables"], ["accounts"]),
        ("stats.tables", "expected an object", "found a list of 1 value"),
    ),
    "table_a_list": (
        _set(["stats", "tables", "accounts"], [12000]),
        ('stats.tables["accounts"]', "expected an object"),
    ),
    "table_without_rows": (
        lambda d: d["stats"]["tables"]["accounts"].pop("rows"),
        ('stats.tables["accounts"]', "'rows' is missing", "expected an integer"),
    ),
    "stats_a_list": (_set(["stats"], []), ("stats: expected an object",)),
    "catalog_a_list": (_set(["catalog"], [1]), ("catalog: expected an object",)),
    "column_not_null_a_string": (
        _relation("accounts", "columns", [["id", "bigint", "yes", "", ""]]),
        ("catalog.relations[", "(accounts).columns[0][2] (not_null)", "expected true or false"),
    ),
    "column_stats_a_list": (
        _set(["stats", "columns", "accounts"], []),
        ('stats.columns["accounts"]', "expected an object"),
    ),
    "alembic_version_a_number": (
        _set(["migrations"], {"alembic_version": 5}),
        ("migrations.alembic_version", "expected a list or null"),
    ),
}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster) -> dict[str, Any]:
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SCHEMA)
    path = tmp_path_factory.mktemp("snap") / "stats.json"
    save_snapshot(take_snapshot(dsn, sample_s=0), path)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _lint(tmp_path: Path, data: dict[str, Any]) -> tuple[Path, Any]:
    sql = tmp_path / "m.sql"
    sql.write_text("CREATE INDEX ON accounts (x);\n")
    stats = tmp_path / "bad.json"
    stats.write_text(json.dumps(data))
    return stats, run("lint", "--stats", str(stats), str(sql))


def test_a_snapshot_as_dumped_is_read(snapshot: dict[str, Any], tmp_path: Path) -> None:
    assert snapshot["stats"]["columns"]["accounts"]  # column stats, catalog and all
    _, r = _lint(tmp_path, snapshot)
    assert r.returncode == 0 and "PW101" in r.stdout and "12k rows" in r.stdout, r


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_of_the_wrong_type_is_named(
    snapshot: dict[str, Any], tmp_path: Path, case: str
) -> None:
    edit, needles = CASES[case]
    data = json.loads(json.dumps(snapshot))
    edit(data)
    stats, r = _lint(tmp_path, data)
    assert_clean_error(r, 2, str(stats), "stats file is damaged", "pgwarden stats dump", *needles)
    assert "internal error" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr  # the message and its hint
