"""PW142 from a snapshot's column statistics when the WHERE compares with the current time
(`now()`, `CURRENT_DATE - 7`, `now() - interval '30 days'`): the time is the snapshot's, and
the estimate is checked against the rows the server really touches."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from pgwarden.analysis.parse import parse_one
from pgwarden.analysis.selectivity import selectivity
from pgwarden.commands import lint, load_context
from pgwarden.findings import Severity

SCHEMA = """
CREATE TABLE page_views (id bigint PRIMARY KEY, viewed_at timestamptz NOT NULL, path text);
INSERT INTO page_views
SELECT g, now() - g * interval '1 minute', '/p/' || (g % 50) FROM generate_series(1, 150000) g;
ANALYZE;
"""
PREDICATES = [
    "viewed_at < now()",
    "viewed_at < now() - interval '30 days'",
    "viewed_at < CURRENT_TIMESTAMP - interval '2 weeks'",
    "viewed_at >= CURRENT_DATE - 7",
]


@pytest.fixture
def views(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def _real(dsn: str, predicate: str) -> int:
    with psycopg.connect(dsn) as c:
        n = c.execute(f"DELETE FROM page_views WHERE {predicate}").rowcount
        c.rollback()
    return n


def test_current_time_predicates_are_estimated_from_the_snapshot(
    views: str, tmp_path: Path
) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(views, sample_s=0), snap)
    f = tmp_path / "001.sql"
    f.write_text("".join(f"DELETE FROM page_views WHERE {p};\n" for p in PREDICATES))
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {x.location.line: x for x in result.findings if x.code == "PW142"}
    for line, predicate in enumerate(PREDICATES, 1):
        real = _real(views, predicate)
        if real < 15_000:  # under the 10 % share: nothing to say
            assert line not in found or found[line].severity is not Severity.ERROR
            continue
        assert line in found, (predicate, real)
        m = re.search(r"about ([\d,]+) of ([\d,]+) rows", found[line].message)
        assert m, found[line].message
        est = int(m.group(1).replace(",", ""))
        assert abs(est - real) <= 0.1 * 150_000, (predicate, est, real)
        assert "column statistics" in found[line].message
    assert found[1].severity is Severity.ERROR  # every row of a 150k-row table


def test_a_time_inside_a_histogram_bucket_is_interpolated(views: str) -> None:
    """A bound one day into a 104-day range selects ~1 % (not half a bucket)."""
    snap = take_snapshot(views, sample_s=0)
    columns = snap.stats.columns["page_views"]
    with psycopg.connect(views) as c:
        row = c.execute("SELECT (min(viewed_at) + interval '1 day')::text FROM page_views")
        first_day = row.fetchone()[0]  # type: ignore[index]
    predicate = f"viewed_at < '{first_day}'"
    where = parse_one(f"SELECT 1 FROM page_views WHERE {predicate}")["SelectStmt"]["whereClause"]
    share = selectivity(where, columns, 150_000)
    real = _real(views, predicate)
    assert share is not None
    assert abs(share * 150_000 - real) <= 0.005 * 150_000, (share * 150_000, real)
