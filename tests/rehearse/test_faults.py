"""Faults and bad input: unreachable schema source, failing step, production targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.commands import load_plan
from pgwarden.errors import ConnectionFailed, Refused
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse.api import RehearseOptions, rehearse
from pgwarden.rehearse.target import check_not_production
from pgwarden.settings import Environment
from tests.rehearse.conftest import write


def test_unreachable_schema_source_fails_before_anything_starts(tmp_path: Path):
    plan = write(tmp_path, "001.sql", "ALTER TABLE t ADD COLUMN x int;\n")
    bad = f"host={tmp_path} port=1 dbname=nope user=nobody connect_timeout=2"
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        rehearse(load_plan([plan]), RehearseOptions(schema_from=bad, record_dir=tmp_path / "rec"))
    assert not (tmp_path / "rec").exists()


def test_failing_step_names_the_step_the_error_and_the_state(run: Any, tmp_path: Path):
    plan = write(
        tmp_path,
        "001.sql",
        "ALTER TABLE settings ADD COLUMN note text;\n"
        "ALTER TABLE no_such_table ADD COLUMN x int;\n"
        "ALTER TABLE settings ADD COLUMN later text;\n",
    )
    result = run([plan])
    assert result.status == "failed"
    ok, failed, skipped = result.steps
    assert (ok.status, failed.status, skipped.status) == ("ok", "failed", "skipped")
    assert failed.error is not None
    assert failed.error.sqlstate == "42P01"
    assert "no_such_table" in failed.error.message
    assert "transaction rolled back" in failed.error.cluster_state
    assert "; step 0 of it undone;" in failed.error.cluster_state
    rh102 = [f for f in result.findings if f.code == "RH102"]
    assert rh102 and rh102[0].step == 1 and rh102[0].location.line == 2


def test_failing_autocommit_step_reports_what_was_committed(run: Any, tmp_path: Path):
    plan = write(
        tmp_path,
        "001.sql",
        "ALTER TABLE settings ADD COLUMN note text;\nSELECT 1;\nSELECT 2;\nSELECT 3;\n"
        "SELECT 1/0;\n",
    )
    result = run([plan], file_transaction=False)
    failed = result.steps[4]
    assert failed.error is not None and failed.error.sqlstate == "22012"
    # the committed steps as a range (RH102 listed every one: "steps 0, 1, 2, 3")
    assert failed.error.cluster_state.endswith("; committed before it: steps 0-3")


@pytest.mark.parametrize("dbname", ["prod_copy", "production", "app-prod"])
def test_database_named_production_is_refused(pg_cluster: Cluster, dbname: str):
    dsn = pg_cluster.create_database(dbname)
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(Refused, match="production"):
        check_not_production(dsn, conn, {})


def test_staging_is_accepted_and_protected_stamp_is_refused(pg_cluster: Cluster):
    dsn = pg_cluster.create_database("staging_stamped")
    with psycopg.connect(dsn, autocommit=True) as conn:
        check_not_production(dsn, conn, {})  # nothing marks it: accepted
        conn.execute(
            "CREATE SCHEMA pgwarden; CREATE TABLE pgwarden.target (environment text NOT NULL);"
            "INSERT INTO pgwarden.target VALUES ('main')"
        )
        check_not_production(dsn, conn, {"main": Environment("main", protected=False)})
        with pytest.raises(Refused, match="protected environment 'main'"):
            check_not_production(dsn, conn, {"main": Environment("main", protected=True)})


def test_refused_target_runs_nothing(pg_cluster: Cluster, tmp_path: Path):
    dsn = pg_cluster.create_database("billing_production")
    plan = write(tmp_path, "001.sql", "CREATE TABLE x (id int);\n")
    with pytest.raises(Refused):
        rehearse(load_plan([plan]), RehearseOptions(database_url=dsn, record_dir=tmp_path / "rec"))
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgwarden_rehearse_%'"
        ).fetchone()
    assert left == (0,)


def test_scratch_database_is_dropped_after_a_staging_rehearsal(
    run: Any, pg_cluster: Cluster, tmp_path: Path
):
    plan = write(tmp_path, "001.sql", "ALTER TABLE settings ADD COLUMN note text;\n")
    result = run([plan])
    assert result.status == "completed"
    assert result.target.startswith("scratch database pgwarden_rehearse_")
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgwarden_rehearse_%'"
        ).fetchone()
    assert left == (0,)
