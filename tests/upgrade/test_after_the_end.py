"""What `upgrade` says and refuses once an upgrade is over: status after a rollback tells
how long it took and which side serves; a finished upgrade's OLD is not upgraded again;
the initial copy's progress says something true when there are no rows to count
(real clusters, 15 -> 16)."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import psycopg
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from pgwarden.events import UpgradeCopy
from pgwarden.notify.events import event_text
from pgwarden.upgrade.logical import published_tables
from tests.upgrade.run_support import Pair, can_write, clean_cwd, leftovers, make_pair, run_args

__all__ = ["clean_cwd"]

_n = itertools.count()


def _run(pair: Pair, journal: Path) -> str:
    result = CliRunner().invoke(
        upgrade, run_args(pair, "--no-write-check", "--journal-file", str(journal))
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_status_after_a_rollback_says_how_long_it_took_and_who_serves(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 16)
    journal = tmp_path / "j.jsonl"
    ran = _run(pair, journal)
    assert "switchover done: NEW serves the writes" in ran, ran
    runner = CliRunner()
    back = ["rollback", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
    back += ["--journal-file", str(journal)]
    rolled = runner.invoke(upgrade, back)
    assert rolled.exit_code == 0, rolled.output
    assert "rolled back: OLD serves the writes again" in rolled.output, rolled.output
    assert "(to old)" not in rolled.output and "(to new)" not in rolled.output
    status = runner.invoke(upgrade, ["status", "--database-url", pair.old_dsn])
    assert status.exit_code == 0, status.output
    line = next(x for x in status.output.splitlines() if "rolled back at" in x)
    assert " UTC, in " in line and "NEW refused writes for" in line, line
    assert "OLD serves the writes again; NEW is read-only" in line, line
    away = [
        "status",
        "--database-url",
        "host=/nonexistent dbname=x",
        "--journal-file",
        str(journal),
    ]
    offline = runner.invoke(upgrade, away)  # OLD unreachable: the local journal's events
    assert "switchover done, NEW serves the writes" in offline.output, offline.output
    last = offline.output.splitlines()[-2]  # before the `next:` line: the rollback
    assert "rolled back, OLD serves the writes again" in last, offline.output
    shown = runner.invoke(upgrade, ["status", "--database-url", pair.old_dsn, "--format", "json"])
    data = orjson.loads(shown.output)
    assert data["serving"] == "old"
    took = data["info"]["rollback"]
    assert took["seconds"] >= took["writes_paused_s"] > 0, took
    assert took["at"].endswith("+00:00")


def test_a_finished_upgrade_is_not_run_again_from_its_read_only_old(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 16)
    _run(pair, tmp_path / "j.jsonl")
    runner = CliRunner()
    done = runner.invoke(
        upgrade, ["finish", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
    )
    assert done.exit_code == 0, done.output
    other = Pair(pair.old, pair.new, pair.old_dsn, pair.new.create_database(f"again_{next(_n)}"))
    again = runner.invoke(upgrade, run_args(other, "--no-write-check"))
    assert again.exit_code == 1, again.output
    assert "already finished" in again.output, again.output
    target = pair.new_dsn.split("dbname=")[1].split()[0]
    assert f"/{target})" in again.output  # where NEW is
    assert "RESET default_transaction_read_only" in again.output  # how to start over
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    with psycopg.connect(other.new_dsn) as c:
        assert published_tables(c) == []  # nothing written to the other NEW
    # made writable on purpose, OLD is a database of its own again: it may be upgraded
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = off")
        db = psycopg.sql.Identifier(pair.old_dsn.split("dbname=")[1].split()[0])
        c.execute(
            psycopg.sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(db)
        )
    assert can_write(pair.old_dsn)
    _run(other, tmp_path / "j2.jsonl")


def test_copy_progress_says_something_true_without_rows_to_count(
    logical_clusters, tmp_path: Path
) -> None:
    old, new = logical_clusters.get(15), logical_clusters.get(16)
    name = f"empty_{next(_n)}"
    pair = Pair(old, new, old.create_database(name), new.create_database(name))
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
        c.execute("ANALYZE")
    ran = _run(pair, tmp_path / "j.jsonl")
    assert "of 0 rows" not in ran, ran
    assert "no rows to copy (by OLD's statistics)" in ran, ran
    empty = UpgradeCopy(
        upgrade_id="u", tables_ready=1, tables_total=2, rows_done=0, rows_total=0, copying=()
    )
    assert event_text(empty).endswith("1 of 2 tables ready, no rows to copy (by OLD's statistics)")
    # a table never analyzed (reltuples -1) is estimated from its live rows, not as 0
    with psycopg.connect(old.create_database(f"fresh_{next(_n)}"), autocommit=True) as c:
        c.execute("CREATE TABLE fresh (id int PRIMARY KEY)")
        c.execute("INSERT INTO fresh SELECT generate_series(1, 500)")
        c.execute("SELECT pg_stat_force_next_flush()")
        c.execute("SELECT 1")
        estimates = {t.name: t.estimate for t in published_tables(c)}
    assert estimates == {"fresh": 500}, estimates
