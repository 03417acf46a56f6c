"""#13.3/#13.4: rehearse takes a Plan like apply, and rehearse and backup report progress as
typed events through the same observer protocol."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.backup import api as backup
from pgwarden.demo import SCHEMA_SQL
from pgwarden.events import BackupProgress, Event, FillProgress, Phase, RehearsalStep
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse.api import RehearseOptions, rehearse
from pgwarden.report.events import render
from tests.backup.conftest import make_shop
from tests.rehearse.conftest import write


def test_rehearse_takes_a_plan_and_emits_typed_events(pg_cluster: Cluster, tmp_path: Path):
    path = write(
        tmp_path,
        "001.sql",
        "ALTER TABLE invoices ADD COLUMN note text;\n"
        "ALTER TABLE invoices ALTER COLUMN note SET DEFAULT 'x';\n",
    )
    plan = commands.load_plan([path], file_transaction=True)
    seen: list[Event] = []
    result = rehearse(
        plan,
        RehearseOptions(
            database_url=pg_cluster.dsn(),
            schema_sql=SCHEMA_SQL,
            default_rows=2_000,
            record_dir=tmp_path / "records",
        ),
        observer=seen.append,
    )
    assert result.status == "completed"
    assert result.fingerprint == plan.fingerprint()
    phases = [e.message for e in seen if isinstance(e, Phase)]
    assert phases[0] == "resolving the schema" and "removing the target" in phases
    fills = [e for e in seen if isinstance(e, FillProgress)]
    assert fills and all(0 < e.done <= e.total for e in fills)
    steps = [e for e in seen if isinstance(e, RehearsalStep)]
    assert [e.step for e in steps] == [s.index for s in result.steps]
    assert all(e.status == "ok" for e in steps)
    assert steps[0].to_dict()["event"] == "rehearsal_step"
    assert render(steps[0]) and render(fills[0]) == []


def test_backup_progress_goes_to_the_observer(pg_cluster: Cluster, tmp_path: Path):
    src = make_shop(pg_cluster)
    seen: list[Event] = []
    m = backup.create(src, catalogue=tmp_path / "cat", observer=seen.append)
    v = backup.verify(m.id, catalogue=tmp_path / "cat", observer=seen.append)
    assert v.ok
    progress = [e for e in seen if isinstance(e, BackupProgress)]
    assert {e.phase for e in progress} >= {"files", "check"}
    assert progress[0].to_dict()["event"] == "backup_progress"


def test_a_plan_rebuilt_from_itself_is_the_same_plan(tmp_path: Path):
    from pgwarden.plan import build_plan
    from pgwarden.rehearse.reanalyse import sources_of
    from pgwarden.sources.alembic import build_alembic_plan, read_alembic_sources
    from tests.rehearse.conftest import INCIDENT, ROOT

    mixed = write(
        tmp_path,
        "002.sql",
        "-- a comment\nBEGIN;\nALTER TABLE t ADD COLUMN é text; ALTER TABLE t\n  DROP COLUMN x;\n"
        "COMMIT;\nCREATE INDEX CONCURRENTLY i ON t (é);\n"
        "DO $$ BEGIN ALTER TABLE t ADD COLUMN y int; END $$;\n",
    )
    for wrap in (True, False):
        plan = commands.load_plan([INCIDENT, mixed], file_transaction=wrap)
        again = build_plan(sources_of(plan), file_transaction=wrap)
        assert again == plan
    alembic = read_alembic_sources(
        ROOT / "tests/contrib/alembic_project/alembic.ini", revision_range="base:head"
    )
    plan = commands.load_plan([], sources=alembic)
    assert build_alembic_plan(sources_of(plan)) == plan
