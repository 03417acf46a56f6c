"""Restore's errors name the real cause: damaged manifests, non-empty targets, honest gaps."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from pgwarden.backup import api
from pgwarden.backup.manifest import format_duration, format_time
from pgwarden.errors import InputError, Refused
from pgwarden.pg.cluster import Cluster
from tests.backup.conftest import assert_clean_error, make_shop, run_cli
from tests.fixtures.pg import new_database


def _dbname(dsn: str) -> str:
    return dict(p.split("=", 1) for p in dsn.split())["dbname"]


@pytest.fixture(scope="module")
def two_backups(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, str, str]:
    """Source DSN, a catalogue, the id of a verified backup and of a later unverified one."""
    src = make_shop(pg_cluster)
    cat = tmp_path_factory.mktemp("errors") / "catalogue"
    first = api.create(src, catalogue=cat)
    assert api.verify(first.id, catalogue=cat).ok
    second = api.create(src, catalogue=cat)
    return src, cat, first.id, second.id


def _copy(cat: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "catalogue"
    shutil.copytree(cat, dest)
    return dest


def _target(cluster: Cluster, sql: str) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)
    return dsn


def _plan(two_backups, target: str, cat: Path | None = None) -> api.RestorePlan:
    src, catalogue, _first, second = two_backups
    m = api.open_catalogue(catalogue).manifest(second)
    return api.plan_restore(
        m.ended_at + timedelta(hours=1),
        target,
        catalogue=cat or catalogue,
        database=_dbname(src),
    )


def test_damaged_manifest_is_named_and_the_others_still_chosen(two_backups, tmp_path, pg_cluster):
    src, catalogue, first, second = two_backups
    cat = _copy(catalogue, tmp_path)
    path = cat / first / "manifest.json"
    path.write_text(path.read_text().replace('"rows": 20000', '"rows": 19999'))
    target = new_database(pg_cluster)
    later = format_time(api.open_catalogue(cat).manifest(second).ended_at + timedelta(hours=1))
    args = ["backup", "restore", "--at", later, "--target-url", target]
    args += ["--database", _dbname(src), "--catalogue", str(cat), "--yes"]
    r = run_cli(*args)
    # The only verified backup is the damaged one: say which, how, and what to do (exit 2).
    assert_clean_error(r, 2, first, "manifest.json: checksum does not match", "damaged")
    assert "holds no backups" not in r.stderr
    assert "put back the damaged manifest.json" in r.stderr
    assert second in r.stderr  # the undamaged one is still listed, with why it does not count
    # An undamaged verified backup is still chosen; the damaged one is reported.
    shutil.rmtree(cat)
    cat = _copy(catalogue, tmp_path)
    (cat / second / "manifest.json").write_text("{ truncated")
    plan = _plan(two_backups, target, cat)
    assert plan.backup.id == first
    assert [b.id for b in plan.damaged] == [second]
    r = run_cli(*args[:-3], "--catalogue", str(cat))  # no --yes: shows the plan, then refuses
    assert r.returncode == 1, r.stderr
    assert "not considered, damaged" in r.stdout and "not valid JSON" in r.stdout


def test_damaged_manifest_alone_is_not_an_empty_catalogue(two_backups, tmp_path, pg_cluster):
    _src, catalogue, first, second = two_backups
    cat = _copy(catalogue, tmp_path)
    shutil.rmtree(cat / second)
    (cat / first / "manifest.json").write_text("")
    with pytest.raises(InputError) as info:
        _plan(two_backups, new_database(pg_cluster), cat)
    assert first in info.value.message and "the file is damaged" in info.value.message
    assert "no readable backup" in info.value.message


def test_view_named_like_a_table_counts_and_clean_replaces_it(two_backups, pg_cluster):
    target = _target(pg_cluster, "CREATE VIEW orders AS SELECT 1 AS x")
    plan = _plan(two_backups, target)
    with pytest.raises(Refused, match=r"not empty: it has 1 object \(view public.orders\)"):
        api.restore(plan)
    with psycopg.connect(target) as conn:  # nothing was restored
        assert conn.execute("SELECT to_regclass('public.customers')").fetchone() == (None,)
    result = api.restore(plan, clean=True)
    assert result.ok, result.mismatches
    assert result.dropped == ("view public.orders",)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (20000,)
        kind = conn.execute("SELECT relkind::text FROM pg_class WHERE oid = 'orders'::regclass")
        assert kind.fetchone() == ("r",)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("CREATE SEQUENCE s", "sequence public.s"),
        ("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x", "materialized view public.mv"),
        ("CREATE TABLE p (k int) PARTITION BY RANGE (k)", "partitioned table public.p"),
        ("CREATE TYPE mood AS ENUM ('a')", "type public.mood"),
        ("CREATE DOMAIN posint AS int CHECK (VALUE > 0)", "domain public.posint"),
        ("CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'SELECT a'", "function public.f(a"),
    ],
)
def test_every_kind_of_object_makes_the_target_not_empty(two_backups, pg_cluster, sql, named):
    plan = _plan(two_backups, _target(pg_cluster, sql))
    with pytest.raises(Refused, match="not empty") as info:
        api.restore(plan)
    assert named in info.value.message


def test_clean_replaces_a_type_named_like_a_table(two_backups, pg_cluster):
    target = _target(pg_cluster, "CREATE TYPE customers AS ENUM ('x')")
    result = api.restore(_plan(two_backups, target), clean=True)
    assert result.ok, result.mismatches
    assert result.dropped == ("type public.customers",)


def test_clean_refuses_naming_what_depends_on_a_clashing_object(two_backups, pg_cluster):
    target = _target(
        pg_cluster, "CREATE VIEW orders AS SELECT 1 AS x; CREATE VIEW mine AS SELECT * FROM orders"
    )
    with pytest.raises(Refused) as info:
        api.restore(_plan(two_backups, target), clean=True)
    msg = str(info.value)
    assert "view public.orders" in msg and "mine" in msg and "DROP VIEW" in msg
    with psycopg.connect(target) as conn:  # nothing was dropped or restored
        assert conn.execute("SELECT to_regclass('public.mine')").fetchone() != (None,)
        assert conn.execute("SELECT to_regclass('public.customers')").fetchone() == (None,)


def test_gap_of_90_s_is_not_printed_as_2_min(two_backups, pg_cluster):
    src, catalogue, first, _second = two_backups
    m = api.open_catalogue(catalogue).manifest(first)
    at = (m.snapshot_at + timedelta(seconds=90)).isoformat()
    r = run_cli(
        "backup",
        "restore",
        "--at",
        at,
        "--target-url",
        new_database(pg_cluster),
        "--database",
        _dbname(src),
        "--catalogue",
        str(catalogue),
    )
    assert r.returncode == 1, r.stderr  # no --yes and no terminal: shows the plan, refuses
    assert "data written in the 1 min 30 s between the snapshot" in r.stdout, r.stdout


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.2, "4.2 s"),
        (90, "1 min 30 s"),
        (120, "2 min"),
        (5400, "1 h 30 min"),
        (190000, "2 days 5 h"),
    ],
)
def test_durations_round_honestly(seconds, text):
    assert format_duration(seconds) == text
