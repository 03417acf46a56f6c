"""A cancelled REINDEX TABLE CONCURRENTLY of a partitioned table leaves its copies in a
partition: REINDEX rebuilds each partition's indexes, one partition after the other,
and the one it was cancelled in keeps `<partition index>_ccnew` and its TOAST index's
copy (`pg_toast.pg_toast_<partition oid>_index_ccnew`), INVALID (seen on 15 and 18).

Both cleanups looked at the named table only (a partitioned table has no indexes of
its own with storage, nor a TOAST table): `pgwarden apply`'s retry and the `lint
--fix` file left the partitions' copies, which the rebuild then skips with a warning.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import take_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.apply.identity import stamp_database
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from tests.apply.conftest import Recorder, plan_of, write_sql
from tests.fixtures.pg import new_database

SCHEMA = """
CREATE TABLE ev (id bigint, at date, payload text) PARTITION BY RANGE (at);
CREATE TABLE ev_2023 PARTITION OF ev FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
  PARTITION BY RANGE (at);
CREATE TABLE ev_2024_h1 PARTITION OF ev_2024 FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE ev_2024_h2 PARTITION OF ev_2024 FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
CREATE INDEX ev_id_idx ON ev (id);
CREATE TABLE other (id int);
INSERT INTO ev SELECT i, date '2023-01-01' + (i % 700), repeat(md5(i::text), 200)
  FROM generate_series(1, 1000) i;
"""


def _invalid(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _cancelled(dsn: str, statement: str) -> None:
    """`statement` cancelled while it waits for an older snapshot (on another table), after
    it made the copies of the partition it rebuilds first. (A writer on a partition would
    hold it off before that: REINDEX of a partitioned table first takes a SHARE lock on
    every partition.)"""
    with psycopg.connect(dsn) as snapshot, psycopg.connect(dsn, autocommit=True) as c:
        snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot.execute("SELECT count(*) FROM other")
        c.execute("SET statement_timeout = '500ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute(statement.encode())


def _with_copies(cluster: Cluster) -> str:
    """A database whose partitions keep the copies of two cancelled rebuilds: ev's (in
    ev_2023, the first partition) and ev_2024's (in ev_2024_h1, a second level)."""
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SCHEMA.encode())
        stamp_database(c, "staging", protected=False, by="tests")
    _cancelled(dsn, "REINDEX TABLE CONCURRENTLY ev")
    _cancelled(dsn, "REINDEX TABLE CONCURRENTLY ev_2024")
    left = _invalid(dsn)
    assert "ev_2023_id_idx_ccnew" in left and "ev_2024_h1_id_idx_ccnew" in left, left
    assert len([n for n in left if n.startswith("pg_toast.")]) == 2, left
    return dsn


def test_apply_drops_the_copies_left_in_partitions(pg_any: Cluster, tmp_path: Path) -> None:
    dsn = _with_copies(pg_any)
    recorder = Recorder()
    result = apply_plan(
        plan_of(write_sql(tmp_path, "REINDEX TABLE CONCURRENTLY ev;"), file_transaction=False),
        database_url=dsn,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
    )
    assert result.state == "done", recorder.kinds()
    dropped = {str(d) for e in recorder.of("cleanup") for d in e.data["dropped_invalid"]}
    assert {"public.ev_2023_id_idx_ccnew", "public.ev_2024_h1_id_idx_ccnew"} <= dropped
    assert _invalid(dsn) == []


def test_the_fixed_file_drops_the_copies_left_in_partitions(
    pg_any: Cluster, tmp_path: Path
) -> None:
    dsn = _with_copies(pg_any)
    snap = take_snapshot(dsn, sample_s=0)
    ctx = Context(snap, snap.catalog, pg_any.installation.major, "database")
    path = write_sql(tmp_path, "REINDEX TABLE ev;\n")
    plan, result = lint([path], context=ctx)
    write_fixes(fix_plan(plan, result, snap))
    text = path.read_text()
    assert "retry with `pgwarden apply`" not in text  # the catalog names the partitions'
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "ev_2024_h1_id_idx_ccnew"' in text, text
    with psycopg.connect(dsn, autocommit=True) as c:
        for _ in range(2):  # and again, as a retry of the file would
            for q in parse(text):
                c.execute(q.text.encode())
            assert _invalid(dsn) == []


def test_a_partitioned_index_rebuild_is_retried_with_apply(pg_any: Cluster, tmp_path: Path) -> None:
    """REINDEX INDEX ... CONCURRENTLY of a partitioned index rebuilds the partitions'
    indexes, which the catalog does not tie to it by name: the fixed file says to retry
    with `pgwarden apply`, whose retry drops the copies a cancelled run left."""
    dsn = _with_copies(pg_any)
    snap = take_snapshot(dsn, sample_s=0)
    ctx = Context(snap, snap.catalog, pg_any.installation.major, "database")
    path = write_sql(tmp_path, "REINDEX INDEX ev_id_idx;\n")
    plan, result = lint([path], context=ctx)
    write_fixes(fix_plan(plan, result, snap))
    text = path.read_text()
    assert "REINDEX INDEX CONCURRENTLY ev_id_idx" in text
    assert "of a partitioned index leaves in a partition: retry with `pgwarden apply`" in text
    result_ = apply_plan(
        plan_of(path, file_transaction=False),
        database_url=dsn,
        policy=GuardPolicy(env="staging"),
    )
    assert result_.state == "done", result_
    assert [n for n in _invalid(dsn) if not n.startswith("pg_toast.")] == []
