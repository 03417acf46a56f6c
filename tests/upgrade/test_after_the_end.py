"""What `upgrade` refuses once an upgrade is over: a finished upgrade's OLD is not
upgraded again (real clusters, 15 -> 16)."""

from __future__ import annotations

import itertools
from pathlib import Path

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
