"""`upgrade rehearse` on real clusters: a restored copy is upgraded with pg_upgrade, each
phase timed, and a planted plan regression is reported where it really happens.

The plant: a queue table whose pending rows (1 %) have a partial index. With
statistics the planner reads the partial index; without them it guesses that
`status <> 'done'` matches 99.5 % of the rows and scans the table. pg_upgrade to
17 (here from 16) carries no statistics, so the regression shows right after the upgrade and
heals after ANALYZE; pg_upgrade to 18 carries them and the plan stays.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import psycopg
import pytest

from pgwarden.backup import api as backup
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse.workload import Query
from pgwarden.upgrade.rehearse import (
    RehearseUpgradeOptions,
    _no_top_queries,
    _top_queries,
    generic_plan,
    rehearse_upgrade,
)
from pgwarden.upgrade.rehearse_report import rehearsal_lines, render_html
from tests.fixtures.pg import new_database

WORKLOAD = """\
-- name: pending
SELECT * FROM orders WHERE status <> 'done';
-- name: by_id
SELECT * FROM orders WHERE id = 42;
"""


def _source(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, note text)")
        c.execute(
            "INSERT INTO orders SELECT g, CASE WHEN g % 100 = 0 THEN 'open' ELSE 'done' END, "
            "repeat('x', 100) FROM generate_series(1, 20000) g"
        )
        c.execute("CREATE INDEX orders_pending ON orders (id) WHERE status <> 'done'")
    return dsn


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wl") / "workload.sql"
    path.write_text(WORKLOAD)
    return path


def test_16_to_17_link_mode_reports_the_regression_of_empty_statistics(
    cluster_of: Callable[[int], Cluster], workload: Path
) -> None:
    r = rehearse_upgrade(
        _source(cluster_of(16)),
        RehearseUpgradeOptions(17, mode="link", copy="dump", workload_file=str(workload)),
    )
    assert r.status == "completed", r.notes
    assert r.upgrade is not None and r.upgrade.ok and r.upgrade.mode == "link"
    assert r.copy is not None and r.copy.kind == "dump"
    names = [p.name for p in r.phases]
    assert names == [
        "dump",
        "restore",
        "analyze source",
        "workload before",
        "start target",
        "pg_upgrade --check",
        "pg_upgrade --link",
        "workload right after",
        "analyze in stages",
        "workload after analyze",
    ]
    assert all(p.seconds > 0 for p in r.phases)
    assert r.stats_carried is False
    assert [s.name.split()[1] for s in r.stats_stages] == ["minimal", "medium", "default"]
    pending = r.queries[0].name
    assert r.before[0].indexes == ("orders_pending",)
    assert r.right_after[0].seq_scans == ("orders",)
    assert r.after_analyze[0].indexes == ("orders_pending",)
    regressions = {(g.query, g.when): g for g in r.regressions}
    right_after = regressions[(pending, "right after pg_upgrade")]
    assert "index orders_pending no longer used" in right_after.changes
    assert "sequential scan on orders appears" in right_after.changes
    assert (pending, "after analyze") not in regressions
    assert any(n.startswith(f"1 query ({pending}) regress until") for n in r.notes)
    html = render_html(r)
    assert "pg_upgrade --link" in html and "orders_pending no longer used" in html
    # Before 18 pg_upgrade asks for analyze-in-stages: the rehearsal ran it itself.
    after = "\n".join(rehearsal_lines(r)).split("after the upgrade, pg_upgrade asks for")[1]
    assert "Optimizer statistics are not transferred by pg_upgrade." in after
    assert "    vacuumdb --all --analyze-in-stages   (ran on the copy" in after
    assert "/bin/vacuumdb" not in after and "-U postgres" not in after  # this machine's


def test_15_to_18_from_the_newest_verified_backup_with_statistics_carried(
    cluster_of: Callable[[int], Cluster], workload: Path, tmp_path: Path
) -> None:
    source = _source(cluster_of(15))
    with psycopg.connect(source, autocommit=True) as c:
        c.execute("CREATE EXTENSION ltree")  # 1.2 on 15, 1.3 on 18: update_extensions.sql
    db = source.split("dbname=")[1].split()[0]
    catalogue = tmp_path / "backups"
    m = backup.create(source, catalogue=catalogue)
    assert backup.verify(m.id, catalogue=catalogue).ok
    report = tmp_path / "upgrade.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgwarden",
            "upgrade",
            "rehearse",
            "--database-url",
            source,
            "--to",
            "18",
            "--catalogue",
            str(catalogue),
            "--workload",
            str(workload),
            "--report",
            str(report),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = orjson.loads(proc.stdout)
    assert data["status"] == "completed"
    assert data["copy"]["kind"] == "backup" and data["copy"]["label"] == m.id
    assert data["target_version"].startswith("18.")
    assert data["statistics_carried_by_pg_upgrade"] is True
    assert data["workload"][0]["right_after"]["indexes"] == ["orders_pending"]
    assert data["regressions"] == []
    assert data["downtime_seconds"] > 0
    assert "restore" in [p["name"] for p in data["phases"]]
    assert report.read_text().startswith("<!DOCTYPE html>")
    (ext,) = data["pg_upgrade_findings"]
    assert (ext["code"], ext["level"]) == ("extension-updates", "notice")
    assert ext["objects"] == [f"{db}: extension ltree"]
    ran = {c: c in s["ran_on_copy"] for s in data["post_upgrade"] for c in s["commands"]}
    # 18 asks for two vacuumdb commands: both run on the copy, in its order, each timed
    assert ran["vacuumdb --all --analyze-in-stages --missing-stats-only"]
    assert ran["vacuumdb --all --analyze-only"]
    assert ran[f"psql -d {db} -c 'ALTER EXTENSION \"ltree\" UPDATE;'"] is False
    phases = [(p["name"], p["detail"]) for p in data["phases"]]
    assert phases[-3:] == [
        ("analyze in stages", "vacuumdb --all --analyze-in-stages --missing-stats-only"),
        ("analyze", "vacuumdb --all --analyze-only"),
        ("workload after analyze", ""),
    ]
    assert all(p["seconds"] > 0 for p in data["phases"][-3:-1])
    html = report.read_text()
    assert "<h2>After the upgrade</h2>" in html and "vacuumdb --all --analyze-only" in html


def test_a_query_with_parameters_is_compared_by_its_generic_plan(
    cluster_of: Callable[[int], Cluster],
) -> None:
    # pg_stat_statements stores `status <> $1`: no value to run it with, but a plan.
    dsn = _source(cluster_of(15))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("ANALYZE orders")
        by_id = generic_plan(c, Query("q", "SELECT * FROM orders WHERE id = $1", "x"))
        assert by_id.indexes == ("orders_pkey",) and by_id.median_ms is None
        many = generic_plan(c, Query("q", "SELECT note FROM orders WHERE id > $1 LIMIT $2", "x"))
        assert many.error is None
        broken = generic_plan(c, Query("q", "SELECT * FROM nowhere WHERE id = $1", "x"))
        assert broken.error is not None and "42P01" in broken.error
        # Prepared fine, fails when planned (1/0 is folded at plan time): the statement is
        # still deallocated, so the next query gets its plan.
        bad = generic_plan(c, Query("q", "SELECT * FROM orders WHERE id = $1 AND 1/0 = 1", "x"))
        assert bad.error is not None and "22012" in bad.error
        assert generic_plan(c, Query("q", "SELECT * FROM orders WHERE id = $1", "x")).indexes
        # Nothing is left prepared in the session.
        assert c.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_no_workload_note_names_what_pg_stat_statements_lacks(
    cluster_of: Callable[[int], Cluster],
) -> None:
    # The session cluster does not preload pg_stat_statements: installing the extension
    # is not enough, and the note must say so rather than "install it".
    dsn = new_database(cluster_of(15))
    with psycopg.connect(dsn, autocommit=True) as c:
        assert "CREATE EXTENSION pg_stat_statements" in _no_top_queries(c)
        c.execute("CREATE EXTENSION pg_stat_statements")
        assert _top_queries(c, 10) == []  # not loaded: the view cannot be read
        note = _no_top_queries(c)
    assert "installed but not in shared_preload_libraries" in note and "restart" in note
