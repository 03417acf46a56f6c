"""`upgrade cancel` at each step before the switchover leaves OLD as it was: no slot, no
publication, writable, same rows (real clusters, 15 -> 18)."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from pgwarden.errors import Refused
from pgwarden.events import Event, UpgradePhase
from pgwarden.upgrade.run import Interrupted, RunOptions, run_upgrade
from tests.upgrade.run_support import can_write, clean_cwd, leftovers, make_pair

__all__ = ["clean_cwd"]

# Ctrl-C arrives when this phase has finished: the run stops before the next one.
AFTER = ["guardrails", "schema", "replication", "initial_copy", "verify", "sequences"]


def _snapshot(dsn: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "SELECT (SELECT count(*) FROM orders), (SELECT max(id) FROM orders), "
            "(SELECT count(*) FROM pg_publication), (SELECT count(*) FROM pg_replication_slots "
            "WHERE database = current_database()), (SELECT count(*) FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database())"
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("after", AFTER)
def test_cancel_after_each_step_leaves_old_as_it_was(
    logical_clusters, tmp_path: Path, after: str
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    before = _snapshot(pair.old_dsn)
    cancel = threading.Event()

    def ctrl_c_after(event: Event) -> None:
        if isinstance(event, UpgradePhase) and event.phase == after and event.status == "done":
            cancel.set()

    with pytest.raises(Interrupted, match="interrupted"):
        run_upgrade(
            pair.sides,
            RunOptions(environment="test", poll_s=0.1, journal_file=str(tmp_path / "j.jsonl")),
            ctrl_c_after,
            cancel,
        )
    runner = CliRunner()
    status = runner.invoke(upgrade, ["status", "--database-url", pair.old_dsn])
    assert "interrupted" in status.output and "continues it" in status.output, status.output
    if after == "replication":  # stopped before its initial copy was watched: NEW tells
        assert "initial copy: pass --target-url NEW" in status.output
        both = ["status", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
        copy = runner.invoke(upgrade, both)  # 4: the user's 3 and OLD's stamp
        assert "initial copy: " in copy.output and "/4 tables ready" in copy.output, copy.output
        assert "rows of the initial copy not counted" in copy.output
    result = runner.invoke(
        upgrade, ["cancel", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
    )
    assert result.exit_code == 0, result.output
    assert "cancelled" in result.output
    assert _snapshot(pair.old_dsn) == before
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    assert leftovers(pair.new_dsn)["subscriptions"] == []
    assert can_write(pair.old_dsn)
    again = runner.invoke(upgrade, ["cancel", "--database-url", pair.old_dsn])
    assert again.exit_code == 1 and "no upgrade to cancel" in again.output


def test_ddl_on_old_during_the_upgrade_refuses_the_switchover(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)

    def ddl_after_verify(event: Event) -> None:
        if isinstance(event, UpgradePhase) and event.phase == "verify" and event.status == "done":
            with psycopg.connect(pair.old_dsn, autocommit=True) as c:
                c.execute("ALTER TABLE orders ADD COLUMN coupon text")

    options = RunOptions(
        environment="test", poll_s=0.1, write_check=False, journal_file=str(tmp_path / "j")
    )
    with pytest.raises(Refused, match="schema of OLD changed"):
        run_upgrade(pair.sides, options, ddl_after_verify)
    assert can_write(pair.old_dsn)  # no switchover was attempted
    # the same DDL applied on NEW lets the same command go on
    with psycopg.connect(pair.new_dsn, autocommit=True) as c:
        c.execute("ALTER TABLE orders ADD COLUMN coupon text")
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("INSERT INTO orders (note, coupon) VALUES ('with coupon', 'X1')")
    record = run_upgrade(pair.sides, options, lambda e: None)
    assert record.state == "switched"
    with psycopg.connect(pair.new_dsn) as c:
        assert c.execute("SELECT coupon FROM orders WHERE note = 'with coupon'").fetchone() == (
            "X1",
        )
