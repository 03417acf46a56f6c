"""What `upgrade` says and refuses once an upgrade is over: status after a rollback tells
how long it took and which side serves; a finished upgrade's OLD is not upgraded again
(real clusters, 15 -> 16)."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import psycopg
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
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
