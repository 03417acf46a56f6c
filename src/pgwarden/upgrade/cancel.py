"""Cancel an upgrade before its switchover: OLD exactly as it was.

Removes, by the upgrade's names, the subscription on NEW (its slot on OLD goes
with it; when NEW cannot be reached the slot is dropped on OLD directly), the
publication on OLD, any reverse replication a half-done switchover created, and
OLD's read-only setting if pgwarden set it. NEW keeps the schema and rows copied
so far: drop and recreate that database before starting again. A live run in
another process is asked to stop (the record's cancel flag) and does this
itself; a run whose process is gone is cleaned up here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from pgwarden.errors import ConnectionFailed, Refused
from pgwarden.events import Observer, UpgradePhase
from pgwarden.upgrade import logical
from pgwarden.upgrade.journal import (
    Record,
    find_active,
    find_latest,
    request_cancel,
    run_is_live,
    save,
)
from pgwarden.upgrade.logical import Names, Sides

__all__ = ["CancelResult", "cancel", "clean_up"]

Conn = psycopg.Connection[tuple[object, ...]]


class CancelResult:
    def __init__(self, record: Record, removed: list[str], waited_for_run: bool) -> None:
        self.record = record
        self.removed = removed
        self.waited_for_run = waited_for_run


def clean_up(old: Conn, sides: Sides | None, record: Record, emit: Observer) -> list[str]:
    """Remove everything the upgrade created before its switchover; the names removed."""
    started = time.monotonic()
    names = Names(record.id)
    removed: list[str] = []
    new: Conn | None = None
    if sides is not None:
        try:
            new = sides.new()
        except ConnectionFailed:
            new = None
    old.execute("SET statement_timeout = '60s'")
    if new is not None:
        new.execute("SET statement_timeout = '60s'")
        for name in (names.forward,):
            if logical.drop_subscription(new, name):
                removed.append(f"subscription {name} on NEW")
        if logical.drop_publication(new, names.reverse):
            removed.append(f"publication {names.reverse} on NEW")
        if logical.drop_slot(new, names.reverse):
            removed.append(f"slot {names.reverse} on NEW")
    if logical.drop_subscription(old, names.reverse):
        removed.append(f"subscription {names.reverse} on OLD")
    if logical.drop_slot(old, names.forward):
        removed.append(f"slot {names.forward} on OLD")
    if logical.drop_publication(old, names.forward):
        removed.append(f"publication {names.forward} on OLD")
    if logical.is_read_only(old) and not record.info.get("old_was_read_only"):
        logical.set_read_only(old, False)
        record.info["old_read_only"] = False
        removed.append("OLD's read-only setting")
    if new is not None:
        new.close()
    record.state = "cancelled"
    record.info["cancel_removed"] = removed
    save(old, record)
    emit(
        UpgradePhase(
            upgrade_id=record.id,
            phase="cancel",
            status="done",
            message="cancelled: " + (", ".join(removed) if removed else "nothing to remove"),
            duration_s=time.monotonic() - started,
        )
    )
    return removed


def cancel(
    old: Conn,
    sides: Sides | None,
    emit: Observer,
    *,
    wait_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    switch_cmd: str | None = None,
) -> CancelResult:
    """Cancel the active upgrade of OLD's database (see module doc)."""
    record = find_active(old)
    if record is None:
        latest = find_latest(old)
        state = f" (the latest, {latest.id}, is {latest.state})" if latest else ""
        raise Refused(
            f"no upgrade to cancel on this database{state}",
            hint="`pgwarden upgrade status` shows the upgrades of this database",
        )
    if record.state in ("switched", "rolling_back"):
        raise Refused(
            f"upgrade {record.id} has switched over to NEW: cancelling would lose writes "
            "made on NEW",
            hint="`pgwarden upgrade rollback` switches back to OLD with NEW's writes",
        )
    waited = False
    if run_is_live(old):
        request_cancel(old, record.id)
        waited = True
        deadline = time.monotonic() + wait_s
        while run_is_live(old) and time.monotonic() < deadline:
            sleep(0.2)
        if run_is_live(old):
            raise Refused(
                f"upgrade {record.id} is running in another process ({record.host} pid "
                f"{record.pid}) and did not stop within {wait_s:g} s",
                hint="press Ctrl-C in that terminal, or end that process and cancel again",
            )
        record = find_latest(old, record.id) or record
        if record.state == "cancelled":  # the run removed its objects itself
            removed = record.info.get("cancel_removed")
            return CancelResult(record, list(removed) if isinstance(removed, list) else [], waited)
        if record.state not in ("running", "interrupted", "switching"):
            # it finished its switchover before it saw the request: NEW takes the writes
            raise Refused(
                f"upgrade {record.id} switched over to NEW before it could stop "
                f"({record.state}): cancelling now would lose the writes made on NEW",
                hint="`pgwarden upgrade rollback` switches back to OLD with NEW's writes",
            )
    if record.state == "switching":
        from pgwarden.upgrade.run import undo_interrupted_switchover

        undo_interrupted_switchover(old, sides, record, emit, switch_cmd)
    removed = clean_up(old, sides, record, emit)
    return CancelResult(record, removed, waited)
