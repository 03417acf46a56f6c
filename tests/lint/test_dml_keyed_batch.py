"""PW142: a batch bounded by a range of a unique key touches at most the range's width,
even when the snapshot's sizes (scaled up, as production is larger than the copy whose
statistics were read) make the statistics' share of the table look large."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import Snapshot, save_snapshot, take_snapshot
from pgwarden.commands import lint, load_context

SCHEMA = """
CREATE TABLE orders (id bigint PRIMARY KEY, seq bigint, flag boolean);
INSERT INTO orders SELECT g, g, NULL FROM generate_series(1, 100000) g;
ANALYZE;
"""


@pytest.fixture
def shop(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def _grown(snap: Snapshot, factor: int) -> Snapshot:
    tables = {
        k: replace(t, rows=t.rows * factor, total_bytes=t.total_bytes * factor)
        for k, t in snap.stats.tables.items()
    }
    return replace(snap, stats=replace(snap.stats, tables=tables))


def test_a_keyed_batch_is_bounded_by_its_key_range(shop: str, tmp_path: Path) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(_grown(take_snapshot(shop, sample_s=0), 1000), snap)
    f = tmp_path / "001.sql"
    f.write_text(
        "UPDATE orders SET flag = false WHERE id >= 1 AND id < 5001;\n"
        "UPDATE orders SET flag = false WHERE seq >= 1 AND seq < 5001;\n"
    )
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {x.location.line: x for x in result.findings if x.code == "PW142"}
    assert 1 not in found, found[1].message  # the primary key: at most 5,000 rows
    assert "of 100,000,000 rows" in found[2].message  # not unique: the statistics' ~5M
    assert "column statistics" in found[2].message
    with psycopg.connect(shop) as c:
        n = c.execute("UPDATE orders SET flag = false WHERE id >= 1 AND id < 5001").rowcount
        c.rollback()
    assert n == 5000
