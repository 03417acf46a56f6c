"""`upgrade run` switches over under a write load without losing an acknowledged write;
`upgrade rollback` goes back to OLD with the writes made on NEW (real clusters)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from pgwarden.events import UpgradeCopy, UpgradeSwitchover, UpgradeVerified
from pgwarden.upgrade.journal import find_latest
from pgwarden.upgrade.run import RunOptions, run_upgrade
from tests.upgrade.run_support import (
    Events,
    Writer,
    can_write,
    clean_cwd,
    ids_on,
    leftovers,
    make_pair,
    run_args,
)

__all__ = ["clean_cwd"]


def _follow_flag(flag: Path, writer: Writer, dsn: str) -> threading.Thread:
    """Moves the writer to `dsn` the moment the switch hook touches `flag`."""

    def watch() -> None:
        while not flag.exists() and not writer.stop.is_set():
            time.sleep(0.002)
        writer.retarget(dsn)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def _stamp_is_own(dsn: str) -> bool:
    """The database's stamp records environment dev and this server and database."""
    from pgwarden.apply.identity import read_identity, read_stamp

    with psycopg.connect(dsn, autocommit=True) as c:
        stamp, ident = read_stamp(c), read_identity(c)
    return (
        stamp is not None
        and stamp.environment == "dev"
        and (stamp.system_identifier, stamp.database_oid)
        == (ident.system_identifier, ident.database_oid)
    )


def test_run_switches_over_under_load_and_rolls_back_with_new_writes(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    flag = tmp_path / "switched"
    events = Events()
    with Writer(pair.old_dsn) as writer:
        _follow_flag(flag, writer, pair.new_dsn)
        while len(writer.acked) < 50:
            time.sleep(0.01)
        record = run_upgrade(
            pair.sides,
            RunOptions(
                environment="test",
                switch_cmd=f"echo to $PGWARDEN_SWITCH_TO; touch {flag}",
                journal_file=str(tmp_path / "journal.jsonl"),
                poll_s=0.1,
            ),
            events,
        )
        acked_before = len(writer.ids())
        while len(writer.acked) < acked_before + 50:  # writes keep landing, now on NEW
            time.sleep(0.01)
    assert record.state == "switched"
    acked = writer.ids()
    assert acked - ids_on(pair.new_dsn) == set()  # no acknowledged write lost
    assert not can_write(pair.old_dsn)  # OLD refuses writes after the switchover
    # the initial copy was reported and every table verified at one LSN (OLD's stamp,
    # pgwarden.target, travels with the user's tables)
    assert any(isinstance(e, UpgradeCopy) and e.tables_ready == 4 for e in events.seen)
    verified = [e for e in events.seen if isinstance(e, UpgradeVerified)]
    assert {e.table for e in verified} == {
        "public.orders",
        "public.items",
        "public.settings",
        "pgwarden.target",
    }
    assert all(e.same for e in verified)
    assert any(isinstance(e, UpgradeSwitchover) and e.outcome == "switched" for e in events.seen)
    # the sequence continues on NEW after OLD's last value (no duplicate key)
    with psycopg.connect(pair.new_dsn, autocommit=True) as c:
        c.execute("INSERT INTO orders (note) VALUES ('after')")
    # forward replication gone, reverse replication in place
    assert leftovers(pair.old_dsn)["publications"] == []
    assert leftovers(pair.old_dsn)["subscriptions"] == [f"pgwarden_up_{record.id}_rev"]
    # each side's stamp describes that side: NEW's was rewritten for NEW, and the reverse
    # replication did not carry it back over OLD's
    assert _stamp_is_own(pair.new_dsn) and _stamp_is_own(pair.old_dsn)
    # the local journal holds the events, and no password
    assert "upgrade_switchover" in (tmp_path / "journal.jsonl").read_text()

    # writes on NEW, then rollback: every one of them reaches OLD
    with psycopg.connect(pair.new_dsn, autocommit=True) as c:
        on_new: set[int] = set()
        for _ in range(20):
            row = c.execute("INSERT INTO orders (note) VALUES ('on new') RETURNING id").fetchone()
            assert row is not None
            on_new.add(int(str(row[0])))
    result = CliRunner().invoke(
        upgrade,
        [
            "rollback",
            "--database-url",
            pair.old_dsn,
            "--target-url",
            pair.new_dsn,
            "--switch-cmd",
            "echo back to $PGWARDEN_SWITCH_TO",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rolled back" in result.output
    assert (acked | on_new) - ids_on(pair.old_dsn) == set(), pair.old.log_tail(3000)
    assert can_write(pair.old_dsn)
    assert not can_write(pair.new_dsn)
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("INSERT INTO orders (note) VALUES ('old again')")  # sequence moved past NEW's
        stored = find_latest(c, record.id)
    assert stored is not None and stored.state == "rolled_back"
    assert _stamp_is_own(pair.old_dsn)  # `pgwarden apply --env dev` keeps working on OLD
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    assert leftovers(pair.new_dsn) == {"slots": [], "publications": [], "subscriptions": []}


def test_run_and_finish_on_another_pair_of_majors(logical_clusters, tmp_path: Path) -> None:
    """16 -> 17 through the CLI, with passwords in both DSNs (the servers trust local
    connections, so any password works): none reaches the output, the hook, the journal
    or the record."""
    pair = make_pair(logical_clusters, 16, 17)
    secret = "sekr3t-pw-4711"
    old_dsn, new_dsn = f"{pair.old_dsn} password={secret}", f"{pair.new_dsn} password={secret}"
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("CREATE SEQUENCE invoice_no START 1000")
        c.execute("SELECT nextval('invoice_no') FROM generate_series(1, 5)")
    runner = CliRunner()
    journal = tmp_path / "j.jsonl"
    result = runner.invoke(
        upgrade,
        run_args(
            replace(pair, old_dsn=old_dsn, new_dsn=new_dsn),
            "--to",
            "17",
            "--no-write-check",
            "--journal-file",
            str(journal),
            "--switch-cmd",
            "echo to=$PGWARDEN_SWITCH_TO pgpassword=${PGPASSWORD:-none} "
            f"old=$PGWARDEN_OLD; echo the password is {secret}",
        ),
    )
    assert result.exit_code == 0, result.output
    assert "switched over" in result.output
    assert "to=new pgpassword=none old=postgres@" in result.output  # a clean environment
    assert "the password is ********" in result.output  # masked
    assert secret not in result.output
    assert secret not in journal.read_text()
    with psycopg.connect(pair.old_dsn) as c:
        stored = c.execute("SELECT row_to_json(r)::text FROM pgwarden_upgrade.runs r").fetchall()
    assert stored and all(secret not in str(row[0]) for row in stored)
    with psycopg.connect(pair.new_dsn) as c:
        assert c.execute("SELECT nextval('invoice_no')").fetchone() == (1005,)
        assert c.execute("SELECT count(*) FROM orders").fetchone() == (2000,)
    status = runner.invoke(upgrade, ["status", "--database-url", old_dsn])
    assert status.exit_code == 0, status.output
    assert "switched" in status.output and "rollback" in status.output
    assert secret not in status.output
    done = runner.invoke(upgrade, ["finish", "--database-url", old_dsn, "--target-url", new_dsn])
    assert done.exit_code == 0, done.output
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    assert leftovers(pair.new_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    assert can_write(pair.new_dsn)


@pytest.mark.parametrize("planted", ["no-replica-identity", "target-not-empty"])
def test_guardrails_refuse_before_anything_is_created(logical_clusters, planted: str) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    if planted == "no-replica-identity":
        with psycopg.connect(pair.old_dsn, autocommit=True) as c:
            c.execute("CREATE TABLE audit_log (at timestamptz, what text)")
    else:
        with psycopg.connect(pair.new_dsn, autocommit=True) as c:
            c.execute("CREATE TABLE already_here (id int PRIMARY KEY)")
        with psycopg.connect(pair.old_dsn, autocommit=True) as c:
            c.execute("CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)")
    result = CliRunner().invoke(upgrade, run_args(pair, "--journal-file", "/dev/null"))
    assert result.exit_code == 1, result.output
    assert "guardrail" in result.output
    if planted == "target-not-empty":  # one problem a line, its fix on the next
        assert "2 guardrails refuse the upgrade (nothing was changed):" in result.output
        assert "  (1) [unlogged-tables] " in result.output and "scratch" in result.output
        assert "  (2) [target-not-empty] NEW's database already holds" in result.output
        assert "      fix: point --target-url at an empty database" in result.output
    assert ("audit_log" if planted == "no-replica-identity" else "already_here") in result.output
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    assert leftovers(pair.new_dsn)["subscriptions"] == []
    with psycopg.connect(pair.old_dsn) as c:  # not even the upgrade's record
        assert c.execute("SELECT to_regnamespace('pgwarden_upgrade')").fetchone() == (None,)
