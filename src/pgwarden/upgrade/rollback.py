"""Rollback after a switchover: back to OLD through the reverse replication, no write lost.

NEW is frozen the way OLD was (EXCLUSIVE locks on the replicated tables, then
read-only for new sessions and its client sessions ended), OLD applies NEW's
final LSN through the reverse subscription, sequences are set on OLD from NEW,
the reverse replication is removed, OLD is made writable, and the switch hook
runs with PGWARDEN_SWITCH_TO=old. NEW stays read-only (it no longer receives
OLD's writes). Bounded by a deadline; if OLD has not applied NEW's final LSN in
time, or its apply worker fails on one of NEW's rows meanwhile, NEW is made writable
again and the upgrade stays switched.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg

from pgwarden.errors import ApplyFailed, Refused
from pgwarden.events import Observer, UpgradeHook, UpgradeSwitchover
from pgwarden.upgrade import logical
from pgwarden.upgrade.journal import Record, save
from pgwarden.upgrade.logical import Names, Sides, Table
from pgwarden.upgrade.sequences import copy_sequences
from pgwarden.upgrade.verify import ApplyFailing, lock_tables, wait_applied

__all__ = ["RollbackFailed", "refuse_if_reverse_broken", "switch_back"]

Conn = psycopg.Connection[tuple[object, ...]]


class RollbackFailed(ApplyFailed):
    """The switch back to OLD did not complete; NEW still takes the writes."""


def refuse_if_reverse_broken(old: Conn, new: Conn, record: Record) -> None:
    """Refuse a rollback the reverse replication cannot carry, before NEW is touched.

    A missing or disabled subscription on OLD, a missing slot on NEW or one whose WAL
    is gone: OLD would never apply NEW's last writes, so freezing NEW (its sessions
    ended, writes paused until --timeout) would only hurt. A worker that is not running
    or a slot without receiver may be a restart: the rollback waits for them.
    """
    from pgwarden.upgrade.reverse import reverse_state

    name = Names(record.id).reverse
    state = reverse_state(old, new, name, record.info.get("switched_at"))
    if state.ok or (
        state.subscription and state.enabled and state.slot and state.wal_status != "lost"
    ):
        return
    if state.subscription and state.enabled is False:
        hint = (
            f"enable it on OLD (SET default_transaction_read_only = off; ALTER SUBSCRIPTION "
            f"{name} ENABLE), check that it streams (`pgwarden upgrade status --target-url "
            "NEW`), then roll back again"
        )
    else:
        hint = (
            "the reverse replication cannot be repaired: NEW's writes since then reach OLD "
            "only by hand; NEW keeps the writes (`pgwarden upgrade finish` ends the upgrade "
            "there)"
        )
    raise Refused(
        f"rollback of upgrade {record.id} refused: {state.problem}; OLD would never get "
        "NEW's last writes (nothing was changed)",
        hint=hint,
    )


def switch_back(
    sides: Sides,
    names: Names,
    tables: list[Table],
    record: Record,
    journal: Conn,
    emit: Observer,
    switch_cmd: str | None,
    deadline: object,
    *,
    keep_forward: bool = False,
) -> float:
    """Move the writes back to OLD; returns how long NEW refused writes (seconds).

    With `keep_forward` (a switchover being undone), the forward replication OLD -> NEW
    is created again while both sides are frozen and equal, before OLD takes writes:
    NEW stays an up-to-date (read-only) replica and the switchover can be retried.
    """
    from pgwarden.upgrade.switchover import Deadline, run_hook

    assert isinstance(deadline, Deadline)
    old = journal
    new = sides.new()
    locker = sides.new(autocommit=False)
    started = time.monotonic()
    record.state = "rolling_back"
    save(journal, record)
    try:
        lock_tables(locker, tables, int(deadline.left() * 1000))
        logical.set_read_only(new, True)
        logical.terminate_clients(new, keep=(locker.info.backend_pid,))
        try:
            applied = wait_applied(new, old, deadline.at, subscription=names.reverse)
        except ApplyFailing as exc:
            raise RollbackFailed(
                f"OLD's reverse subscription {names.reverse} failed to apply NEW's writes "
                f"({exc.errors} apply error(s) while NEW was paused; the reason is in OLD's "
                "server log)",
                hint="NEW takes writes again; remove the cause on OLD (a constraint, trigger "
                "or row that refuses NEW's rows), then run `pgwarden upgrade rollback` again",
            ) from None
        if applied is None:
            raise RollbackFailed(
                "OLD did not apply NEW's last writes within the timeout",
                hint="NEW takes writes again; check the reverse subscription on OLD "
                "(pg_stat_subscription) and run `pgwarden upgrade rollback` again",
            )
        final = applied
        copy_sequences(new, old)
        logical.drop_subscription(old, names.reverse)
        logical.drop_publication(new, names.reverse)
        if keep_forward:
            logical.create_publication(old, names.forward, tables)
            logical.create_subscription(new, names.forward, sides.source_conninfo, copy_data=False)
        else:
            logical.drop_publication(old, names.forward)
            logical.drop_slot(old, names.forward)
        logical.set_read_only(old, False)
        record.info["old_read_only"] = False
        record.info["new_read_only"] = True
        locker.rollback()
    except BaseException:
        if not locker.closed:
            locker.rollback()
        if record.info.get("old_read_only", True) is not False:
            logical.set_read_only(new, False)
            record.state = "switched"
            save(journal, record)
        raise
    finally:
        locker.close()
        new.close()
    paused = time.monotonic() - started
    record.state = "running" if keep_forward else "rolled_back"
    if keep_forward:
        record.phase = "sequences"
        record.info.pop("switch_step", None)
        record.info.pop("hook_started", None)
    record.info["rolled_back_lsn"] = final
    save(journal, record)
    if switch_cmd:
        result = run_hook(switch_cmd, sides, "old", record.id, max(deadline.left(), 30.0))
        emit(
            UpgradeHook(
                upgrade_id=record.id,
                switch_to="old",
                exit_code=result.exit_code,
                duration_s=result.duration_s,
                output=result.output,
            )
        )
    if not keep_forward:
        _record_rollback(journal, record, time.monotonic() - started, paused)
    emit(
        UpgradeSwitchover(
            upgrade_id=record.id,
            direction="to_old",
            outcome="rolled_back",
            final_lsn=final,
            writes_paused_s=paused,
            message="every write made on NEW is on OLD; NEW is read-only"
            + (" and replicates from OLD again" if keep_forward else ""),
        )
    )
    return paused


def _record_rollback(journal: Conn, record: Record, took_s: float, paused_s: float) -> None:
    """Keep when the rollback ended, how long it took (hook included) and the write pause."""
    record.info["rollback"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(took_s, 3),
        "writes_paused_s": round(paused_s, 3),
    }
    save(journal, record)
