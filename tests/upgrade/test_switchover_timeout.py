"""A switchover past its timeout is rolled back: OLD takes writes again, NEW stays in
sync, and the switchover can be tried again (real clusters, 15 -> 18)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from pgwarden.events import Event, Observer, UpgradeHook, UpgradeSwitchover
from pgwarden.upgrade.run import RunOptions, UpgradeFailed, run_upgrade
from tests.upgrade.run_support import (
    Events,
    Writer,
    can_write,
    clean_cwd,
    ids_on,
    leftovers,
    make_pair,
)

__all__ = ["clean_cwd"]


def _options(tmp_path: Path, cmd: str, timeout_s: float) -> RunOptions:
    return RunOptions(
        environment="test",
        switch_cmd=cmd,
        switchover_timeout_s=timeout_s,
        write_check=False,
        journal_file=str(tmp_path / "journal.jsonl"),
        poll_s=0.1,
    )


def test_hook_past_the_timeout_rolls_back_and_a_retry_switches(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    events = Events()
    with Writer(pair.old_dsn) as writer:
        while len(writer.acked) < 20:
            time.sleep(0.01)
        # the hook hangs: killed at the deadline, the switchover is undone
        with pytest.raises(UpgradeFailed, match="switchover rolled back") as failed:
            run_upgrade(
                pair.sides,
                _options(
                    tmp_path, 'echo moving; [ "$PGWARDEN_SWITCH_TO" = new ] && sleep 60; true', 3.0
                ),
                events,
            )
        assert "run` tries the switchover again" in (failed.value.hint or "")
        hook = next(e for e in events.seen if isinstance(e, UpgradeHook))
        assert hook.exit_code is None and "moving" in hook.output
        assert any(
            isinstance(e, UpgradeSwitchover) and e.outcome == "rolled_back" for e in events.seen
        )
        # OLD takes writes again: the writer goes on there
        resumed = len(writer.acked)
        while len(writer.acked) < resumed + 30:
            time.sleep(0.01)
    assert can_write(pair.old_dsn)
    # NEW still replicates from OLD: every acknowledged write reaches it
    deadline = time.monotonic() + 30
    while writer.ids() - ids_on(pair.new_dsn) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert writer.ids() - ids_on(pair.new_dsn) == set()
    # and NEW refuses writes of its own while it is a replica
    assert not can_write(pair.new_dsn)

    # a retry with a working hook switches over
    record = run_upgrade(pair.sides, _options(tmp_path, "true", 30.0), events)
    assert record.state == "switched"
    assert writer.ids() - ids_on(pair.new_dsn) == set()
    assert can_write(pair.new_dsn) and not can_write(pair.old_dsn)
    assert leftovers(pair.old_dsn)["slots"] == []


def test_switchover_timeout_before_the_hook_leaves_old_writable(
    logical_clusters, tmp_path: Path
) -> None:
    """A session holding a write lock on OLD keeps the switchover from locking the tables:
    past the timeout OLD is left as it was and NEW keeps replicating."""
    pair = make_pair(logical_clusters, 15, 18)
    events = Events()
    holder = psycopg.connect(pair.old_dsn)
    try:
        with pytest.raises(UpgradeFailed, match="switchover rolled back"):
            run_upgrade(
                pair.sides,
                RunOptions(
                    environment="test",
                    write_check=False,
                    verify=False,
                    poll_s=0.1,
                    switchover_timeout_s=2.0,
                    journal_file=str(tmp_path / "j.jsonl"),
                ),
                fan(events, holder),
            )
    finally:
        holder.rollback()
        holder.close()
    assert can_write(pair.old_dsn)
    assert not any(isinstance(e, UpgradeHook) for e in events.seen)
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        row = c.execute("INSERT INTO orders (note) VALUES ('x') RETURNING id").fetchone()
    assert row is not None
    deadline = time.monotonic() + 30
    while int(str(row[0])) not in ids_on(pair.new_dsn) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert int(str(row[0])) in ids_on(pair.new_dsn)


def fan(events: Events, holder: psycopg.Connection[tuple[object, ...]]) -> Observer:
    """Record events; when the switchover starts, open a write transaction on OLD."""
    from pgwarden.events import UpgradePhase

    def observe(event: Event) -> None:
        events(event)
        if (
            isinstance(event, UpgradePhase)
            and event.phase == "switchover"
            and event.status == "started"
        ):
            holder.execute("UPDATE settings SET v = v WHERE k = 'a'")

    return observe
