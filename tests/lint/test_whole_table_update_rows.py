"""PW140 and PW142 grade the same rows alike: a whole-table UPDATE of a table above
dml_max_rows is an error, as an UPDATE ... WHERE touching those rows is (PW142)."""

from __future__ import annotations

from pathlib import Path

from pgwarden.analysis.context import Snapshot
from pgwarden.commands import Context, lint
from pgwarden.pg.stats import Stats, TableStats


def _snapshot(rows: int) -> Snapshot:
    # small on disk and quiet: judged by size and traffic alone, a warning
    orders = TableStats("orders", rows, 20 * 1024**2, 15 * 1024**2, 5 * 1024**2, writes_per_s=0.0)
    stats = Stats("2026-12-03T00:00:00Z", 150000, "app", 0.0, tables={"orders": orders})
    return Snapshot(stats, None)


def _pw140(tmp_path: Path, rows: int) -> str:
    f = tmp_path / "001.sql"
    f.write_text("UPDATE orders SET note = 'x';\n")
    snap = _snapshot(rows)
    _, result = lint([f], context=Context(snap, None, 15, "snapshot"))
    found = [x for x in result.findings if x.code == "PW140"]
    assert len(found) == 1
    return f"{found[0].severity.value}: {found[0].message}"


def test_whole_table_update_above_dml_max_rows_is_an_error(tmp_path: Path) -> None:
    got = _pw140(tmp_path, 200_000)
    assert got.startswith("error: updates every row of orders")
    assert got.endswith("more than dml_max_rows = 100,000")
    assert _pw140(tmp_path, 50_000).startswith("warning: updates every row of orders")
