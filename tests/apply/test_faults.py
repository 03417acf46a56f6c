"""Faults: server restart, dropped connection, permission denied, client disk full."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import ApplyResult, GuardPolicy, apply_plan, resume_run, status
from pgwarden.apply.identity import stamp_database
from pgwarden.demo import create_sample_schema
from pgwarden.pg.cluster import Cluster
from tests.apply.conftest import (
    CIC_WAITING,
    INVALID,
    Recorder,
    apply_in_thread,
    cli,
    plan_of,
    scalar,
    wait_until,
    write_sql,
)
from tests.fixtures.pg import new_database

PLAN = (
    "ALTER TABLE settings ADD COLUMN note text;\n"
    "CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);\n"
    "ALTER TABLE settings ADD COLUMN later text;\n"
)
SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM payment_accounts"


@pytest.fixture(scope="module")
def restartable() -> Iterator[Cluster]:
    """A cluster of this module's own, which its tests restart (one start for them all)."""
    with Cluster.start() as cluster:
        yield cluster


@pytest.fixture
def own_cluster(restartable: Cluster) -> tuple[Cluster, str]:
    """The restartable cluster and a fresh shop database on it."""
    dsn = new_database(restartable)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2_000, accounts_rows=100)
        stamp_database(c, "staging", protected=False, by="tests")  # adopted, like `shop`
    return restartable, dsn


def test_server_restart_mid_apply_status_tells_the_truth_and_resume_finishes(
    own_cluster: tuple[Cluster, str], tmp_path: Path, recorder: Recorder
) -> None:
    cluster, dsn = own_cluster
    holder = psycopg.connect(dsn)
    holder.execute(SNAPSHOT)
    t, results = apply_in_thread(dsn, write_sql(tmp_path, PLAN), recorder)
    wait_until(dsn, CIC_WAITING)
    cluster.restart(mode="immediate")
    t.join(60)
    holder.close()
    result = results[0]
    assert isinstance(result, ApplyResult) and result.state == "failed"
    assert result.outcome is not None
    assert "lost the connection" in (result.outcome.message or "")

    run = status(dsn).runs[0]
    assert run.state == "interrupted"
    assert [s.state for s in run.steps] == ["done", "running", "pending"]
    assert scalar(dsn, INVALID) == 1  # the crash left the build's INVALID index

    resumed = resume_run(database_url=dsn, observer=recorder, policy=GuardPolicy(env="staging"))
    assert resumed.state == "done"
    assert resumed.outcome is not None and resumed.outcome.skipped == (0,)
    assert scalar(dsn, INVALID) == 0
    assert scalar(dsn, "SELECT count(*) FROM pgwarden.applied") == 3
    assert any(e.kind == "cleanup" for e in recorder.events)


def test_dropped_connection_is_reported_and_resume_finishes(
    shop: str, holder, tmp_path: Path, recorder: Recorder
) -> None:
    snap = holder(SNAPSHOT)
    t, results = apply_in_thread(shop, write_sql(tmp_path, PLAN), recorder)
    wait_until(shop, CIC_WAITING)
    scalar(
        shop,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'pgwarden-apply'",
    )
    t.join(60)
    result = results[0]
    assert getattr(result, "state", None) == "failed"
    run = status(shop).runs[0]
    assert run.state == "failed"
    assert [s.state for s in run.steps] == ["done", "failed", "pending"]
    assert "lost the connection" in (run.message or "")
    snap.commit()
    assert resume_run(database_url=shop, policy=GuardPolicy(env="staging")).state == "done"
    assert scalar(shop, INVALID) == 0


def test_dropped_connection_reconnects_and_finishes_the_run(
    shop: str, holder, tmp_path: Path, recorder: Recorder
) -> None:
    snap = holder(SNAPSHOT)
    t, results = apply_in_thread(shop, write_sql(tmp_path, PLAN), recorder, reconnect_s=30)
    wait_until(shop, CIC_WAITING)
    scalar(
        shop,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'pgwarden-apply'",
    )
    wait_until(shop, CIC_WAITING)  # resumed: the build waits for the snapshot again
    snap.commit()
    t.join(60)
    result = results[0]
    assert isinstance(result, ApplyResult) and result.state == "done", result
    kinds = [e.kind for e in recorder.events]
    assert kinds.index("reconnecting") < kinds.index("reconnected")
    assert scalar(shop, "SELECT count(*) FROM pgwarden.applied") == 3
    assert scalar(shop, INVALID) == 0  # the interrupted build's leftover was rebuilt
    runs = status(shop).runs
    assert [r.state for r in runs[:2]] == ["done", "failed"]  # the resume, the first run


def test_server_restart_reconnects_and_finishes_the_run(
    own_cluster: tuple[Cluster, str], tmp_path: Path, recorder: Recorder
) -> None:
    cluster, dsn = own_cluster
    holder = psycopg.connect(dsn)
    holder.execute(SNAPSHOT)
    t, results = apply_in_thread(dsn, write_sql(tmp_path, PLAN), recorder, reconnect_s=60)
    wait_until(dsn, CIC_WAITING)
    cluster.restart(mode="immediate")  # the holder's snapshot dies with it
    t.join(90)
    holder.close()
    result = results[0]
    assert isinstance(result, ApplyResult) and result.state == "done", result
    assert "reconnected" in [e.kind for e in recorder.events]
    assert scalar(dsn, "SELECT count(*) FROM pgwarden.applied") == 3
    assert scalar(dsn, INVALID) == 0


def test_permission_denied_is_exit_3_with_a_clear_message(shop: str, tmp_path: Path) -> None:
    first = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;", "001.sql")
    assert (
        apply_plan(plan_of(first), database_url=shop, policy=GuardPolicy(env="staging")).state
        == "done"
    )
    with psycopg.connect(shop, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = 'limited'").fetchone():
            c.execute("CREATE ROLE limited LOGIN")
        c.execute("GRANT USAGE ON SCHEMA pgwarden TO limited")
        c.execute("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA pgwarden TO limited")
    second = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN x int;", "002.sql")
    limited = shop.replace("user=postgres", "user=limited")
    p = subprocess.run(
        cli("apply", str(second), "--database-url", limited, "--env", "staging"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 3, p.stderr
    assert "permission denied" in p.stderr and "Traceback" not in p.stderr
    assert "grant the privilege" in p.stderr


def test_client_disk_full_stops_before_anything_changes(shop: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    p = subprocess.run(
        cli(
            "apply",
            str(path),
            "--database-url",
            shop,
            "--env",
            "staging",
            "--journal-file",
            "/dev/full",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 2, p.stderr
    assert "cannot write the local journal" in p.stderr and "Traceback" not in p.stderr
    assert scalar(shop, "SELECT to_regclass('pgwarden.runs')") is None
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'settings' AND column_name = 'note'",
        )
        == 0
    )
