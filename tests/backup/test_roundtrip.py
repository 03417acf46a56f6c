"""create -> verify -> restore --at on real clusters, proven by checksums."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from pgwarden.backup import api
from pgwarden.backup.content import pin_output_settings
from pgwarden.backup.manifest import format_time
from pgwarden.errors import Refused
from pgwarden.pg.cluster import Cluster
from tests.backup.conftest import make_shop, run_cli
from tests.fixtures.pg import new_database


def _rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        pin_output_settings(conn)
        return conn.execute(query).fetchall()


def test_create_verify_restore_round_trip(pg_cluster: Cluster, catalogue: Path):
    src = make_shop(pg_cluster)
    m = api.create(src, catalogue=catalogue)
    assert {t.qualified: t.rows for t in m.tables} == {
        "public.Odd Name": 2,
        "public.customers": 3000,
        "public.orders": 20000,
    }
    assert m.snapshot_at.utcoffset() == timedelta(0)
    assert m.started_at <= m.snapshot_at <= m.ended_at
    assert any(f.table == "public.orders" for f in m.files)
    assert [b.state for b in api.list_backups(catalogue)] == ["unverified"]

    v = api.verify(m.id, catalogue=catalogue)
    assert v.ok, v.mismatches
    assert v.tables_checked == 3
    (info,) = api.list_backups(catalogue)
    assert info.state == "verified"

    target = new_database(pg_cluster)
    plan = api.plan_restore(
        format_time(m.ended_at + timedelta(minutes=5)),
        target,
        catalogue=catalogue,
        database=pg_cluster_db(src),
    )
    assert plan.backup.id == m.id
    assert plan.gap >= timedelta(minutes=5)
    assert plan.estimated_restore_seconds == v.restore_seconds
    result = api.restore(plan)
    assert result.ok, result.mismatches
    query = "SELECT * FROM orders ORDER BY id"
    assert _rows(target, query) == _rows(src, query)
    assert _rows(target, 'SELECT * FROM "Odd Name" ORDER BY k') == [
        ("a", timedelta(days=1, hours=2)),
        ("b", None),
    ]


def pg_cluster_db(dsn: str) -> str:
    return dict(p.split("=", 1) for p in dsn.split())["dbname"]


def test_cli_round_trip_and_json(pg_cluster: Cluster, catalogue: Path):
    src = make_shop(pg_cluster)
    r = run_cli(
        "backup", "create", "--database-url", src, "--catalogue", str(catalogue), "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert created["state"] == "unverified"
    assert created["ended_at"].endswith("+00:00")

    r = run_cli("backup", "verify", "--latest", "--catalogue", str(catalogue))
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and "achievable RTO" in r.stdout

    r = run_cli("backup", "list", "--catalogue", str(catalogue))
    assert r.returncode == 0, r.stderr
    assert created["id"] in r.stdout and "verified" in r.stdout

    r = run_cli("backup", "list", "--catalogue", str(catalogue), "--format", "json")
    (entry,) = json.loads(r.stdout)["backups"]
    assert entry["verification"]["ok"] is True
    assert entry["verification"]["verified_at"].endswith("+00:00")

    target = new_database(pg_cluster)
    r = run_cli(
        "backup",
        "restore",
        "--at",
        "2999-01-01T00:00:00+02:00",
        "--target-url",
        target,
        "--database",
        pg_cluster_db(src),
        "--catalogue",
        str(catalogue),
        "--yes",
    )
    assert r.returncode == 0, r.stderr
    assert created["id"] in r.stdout
    assert "is not in this backup" in r.stdout
    assert "match the manifest's checksums" in r.stdout


def test_restore_refuses_a_target_with_tables(pg_cluster: Cluster, catalogue: Path):
    src = make_shop(pg_cluster)
    m = api.create(src, catalogue=catalogue)
    api.verify(m.id, catalogue=catalogue)
    plan = api.plan_restore(m.ended_at, src, catalogue=catalogue)
    with pytest.raises(Refused, match=r"not empty: it has 5 objects \(table public.\"Odd Name\""):
        api.restore(plan)
