"""The reverse replication NEW -> OLD after a switchover, as `upgrade status` shows it.

After the switchover OLD subscribes to NEW (`pgwarden_up_<id>_rev`): as long as
that keeps up, a rollback loses nothing. OLD tells whether the subscription is
there, enabled, has an apply worker and when it last heard from NEW
(pg_stat_subscription); NEW, when it can be reached, tells how far OLD trails
(its slot in pg_replication_slots and pg_stat_replication, as the forward lag is
measured on OLD before the switchover).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from pgwarden.upgrade.logical import lag

__all__ = ["ReverseState", "reverse_state"]

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class ReverseState:
    """What OLD (and NEW, when given) say about the reverse replication."""

    name: str
    subscription: bool  # the subscription exists on OLD
    enabled: bool | None
    worker: bool  # an apply worker runs for it on OLD
    last_contact: datetime | None  # the last message OLD's worker got from NEW
    new_read: bool  # NEW was read (slot fields below are None otherwise)
    new_error: str | None
    slot: bool | None
    slot_active: bool | None
    wal_status: str | None
    lag_bytes: int | None
    lag_s: float | None
    lag_unknown: str | None  # why lag_s is None while lag_bytes is known
    problem: str | None  # None: rollback loses nothing once OLD catches up
    at_risk_since: datetime | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "ok": self.ok,
            "subscription": self.name,
            "subscription_present": self.subscription,
            "enabled": self.enabled,
            "worker_running": self.worker,
            "last_contact": iso(self.last_contact),
            "new_read": self.new_read,
            "new_error": self.new_error,
            "slot_present": self.slot,
            "slot_active": self.slot_active,
            "wal_status": self.wal_status,
            "lag_bytes": self.lag_bytes,
            "lag_s": self.lag_s,
            "lag_unknown": self.lag_unknown,
            "problem": self.problem,
            "writes_at_risk_since": iso(self.at_risk_since),
        }


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _old_side(old: Conn, name: str) -> tuple[bool, bool | None, bool, datetime | None]:
    """(present, enabled, worker running, last message from NEW) from OLD."""
    row = old.execute(
        """
        SELECT s.subenabled, st.pid IS NOT NULL,
               greatest(st.last_msg_receipt_time, st.latest_end_time)
        FROM pg_subscription s
        LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
        WHERE s.subname = %s AND s.subdbid = (SELECT oid FROM pg_database
                                             WHERE datname = current_database())
        """,
        (name,),
    ).fetchone()
    if row is None:
        return False, None, False, None
    return True, bool(row[0]), bool(row[1]), _time(row[2])


def _slot(new: Conn, name: str) -> tuple[bool, bool | None, str | None, datetime | None]:
    """(present, active, wal_status, inactive since: 17+) of NEW's slot `name`."""
    row = new.execute(
        "SELECT to_jsonb(s) FROM pg_replication_slots s WHERE slot_name = %s", (name,)
    ).fetchone()
    if row is None or not isinstance(row[0], dict):
        return False, None, None, None
    slot: dict[str, Any] = row[0]
    wal = slot.get("wal_status")
    return (
        True,
        bool(slot.get("active")),
        None if wal is None else str(wal),
        _time(slot.get("inactive_since")),
    )


def reverse_state(
    old: Conn,
    new: Conn | None,
    name: str,
    switched_at: datetime | str | None,
    new_error: str | None = None,
) -> ReverseState:
    """The reverse replication `name` as OLD and (when `new` is given) NEW see it.

    `switched_at` (the switchover's end, from the record: a datetime or ISO text)
    bounds the writes at risk when nothing later is known.
    """
    switched = _time(switched_at)
    present, enabled, worker, contact = _old_side(old, name)
    slot = active = wal = None
    inactive_since: datetime | None = None
    behind_bytes: int | None = None
    behind_s: float | None = None
    behind_unknown: str | None = None
    if new is not None:
        slot, active, wal, inactive_since = _slot(new, name)
        behind = lag(new, name)
        if behind is not None:
            behind_bytes, behind_s, behind_unknown = behind.bytes, behind.seconds, behind.unknown
    since = contact or switched
    problem: str | None = None
    if not present:
        problem = f"the reverse subscription {name} is missing on OLD"
        since = switched
    elif enabled is False:
        problem = f"the reverse subscription {name} on OLD is disabled"
    elif slot is False:
        problem = f"the reverse replication slot {name} is missing on NEW"
    elif wal == "lost":
        problem = f"NEW removed WAL its slot {name} still needed (wal_status lost)"
    elif not worker:
        problem = (
            f"no apply worker runs for {name} on OLD (it cannot reach NEW or keeps failing: "
            "see OLD's server log)"
        )
    elif active is False:
        problem = f"no receiver is connected to NEW's slot {name}"
        since = inactive_since or since
    return ReverseState(
        name=name,
        subscription=present,
        enabled=enabled,
        worker=worker,
        last_contact=contact,
        new_read=new is not None,
        new_error=new_error,
        slot=slot,
        slot_active=active,
        wal_status=wal,
        lag_bytes=behind_bytes,
        lag_s=behind_s,
        lag_unknown=behind_unknown,
        problem=problem,
        at_risk_since=since if problem else None,
    )
