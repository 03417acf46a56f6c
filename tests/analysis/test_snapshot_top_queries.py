"""Stats snapshots carry pg_stat_statements' heaviest queries when the extension is there."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.analysis.context import load_snapshot
from pgwarden.commands import stats_dump
from pgwarden.pg.cluster import Cluster


def test_top_queries_recorded_and_reloaded(tmp_path: Path):
    settings = {"shared_preload_libraries": "pg_stat_statements"}
    with Cluster.start(settings=settings) as cluster:
        dsn = cluster.create_database("app")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE EXTENSION pg_stat_statements")
            c.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            c.execute("INSERT INTO t SELECT g, 'x' FROM generate_series(1, 5000) g")
            for _ in range(20):
                c.execute("SELECT count(*) FROM t WHERE v = 'x'")
        snap = stats_dump(dsn, tmp_path / "stats.json", sample_s=0)
    queries = [q["query"] for q in snap.top_queries]
    assert any("count(*) FROM t" in q for q in queries), queries
    heavy = next(q for q in snap.top_queries if "count(*) FROM t" in q["query"])
    assert heavy["calls"] == 20
    assert load_snapshot(tmp_path / "stats.json").top_queries == snap.top_queries


def test_no_extension_means_no_top_queries(db: str, tmp_path: Path):
    assert stats_dump(db, tmp_path / "stats.json", sample_s=0).top_queries == ()
