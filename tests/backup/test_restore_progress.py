"""A restore reports its progress as create and verify do: the tables pg_restore loads,
counted in rows, then the check (real cluster)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pgwarden.backup import api
from pgwarden.backup.manifest import format_time
from pgwarden.events import BackupProgress, Event
from pgwarden.pg.cluster import Cluster
from tests.backup.conftest import make_shop
from tests.fixtures.pg import new_database


def test_a_restore_reports_its_progress_to_the_observer(pg_cluster: Cluster, catalogue: Path):
    src = make_shop(pg_cluster)
    m = api.create(src, catalogue=catalogue)
    assert api.verify(m.id, catalogue=catalogue).ok
    database = dict(p.split("=", 1) for p in src.split())["dbname"]
    plan = api.plan_restore(
        format_time(m.ended_at + timedelta(minutes=1)),
        new_database(pg_cluster),
        catalogue=catalogue,
        database=database,
    )
    seen: list[Event] = []
    result = api.restore(plan, observer=seen.append)
    assert result.ok, result.mismatches
    progress = [e for e in seen if isinstance(e, BackupProgress)]
    restored = [e for e in progress if e.phase == "restore"]
    assert {e.item for e in restored} == {"public.customers", "public.orders", "public.Odd Name"}
    assert restored[-1].done == restored[-1].total == 23002  # rows, as verify counts them
    assert progress[-1].phase == "check"
