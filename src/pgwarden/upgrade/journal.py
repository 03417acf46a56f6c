"""The upgrade's journal: one `pgwarden_upgrade.runs` record on OLD, and local JSON lines.

The record on OLD is the truth `upgrade status`, `cancel`, `rollback` and a
resumed `run` read: the phase reached, what was created (by name), the switch
state, the final LSN, and a cancel request from another terminal. It holds no
secret: DSNs are kept without password (`describe_dsn`). A session-level
advisory lock on OLD, held by the process running the upgrade, tells a live
run from one whose process was killed (the lock dies with its connection).
Every event is also appended to a local JSON-lines file, like apply's.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pgwarden.upgrade.logical import STATE_SCHEMA

__all__ = [
    "ACTIVE",
    "LOCK_KEY",
    "Record",
    "ensure_schema",
    "find_active",
    "find_latest",
    "lock_run",
    "run_is_live",
    "save",
]

Conn = psycopg.Connection[tuple[object, ...]]

# States of an upgrade. Phases move forward inside "running".
ACTIVE = ("running", "interrupted", "switching", "switched", "rolling_back", "cancelling")
DONE = ("cancelled", "rolled_back", "finished")
PHASES = (
    "guardrails",
    "schema",
    "replication",
    "initial_copy",
    "catch_up",
    "verify",
    "sequences",
    "switchover",
)
LOCK_KEY = 0x7067775F7570  # "pgw_up": one live upgrade run per OLD cluster

_DDL = sql.SQL(
    """
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.runs (
        id text PRIMARY KEY,
        state text NOT NULL,
        phase text NOT NULL,
        environment text NOT NULL,
        database text NOT NULL,
        target text NOT NULL,
        target_major int NOT NULL,
        info jsonb NOT NULL DEFAULT '{{}}',
        cancel_requested boolean NOT NULL DEFAULT false,
        os_user text, host text, pid int,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """
).format(schema=sql.Identifier(STATE_SCHEMA))


@dataclass(slots=True)
class Record:
    """One upgrade as OLD records it."""

    id: str
    state: str
    phase: str
    environment: str
    database: str
    target: str  # NEW without password
    target_major: int
    info: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    host: str | None = None
    pid: int | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "phase": self.phase,
            "environment": self.environment,
            "database": self.database,
            "target": self.target,
            "target_major": self.target_major,
            "info": self.info,
            "cancel_requested": self.cancel_requested,
            "host": self.host,
            "pid": self.pid,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }


def ensure_schema(conn: Conn) -> None:
    """Create the record's schema and table on OLD (idempotent)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY + 1,))
        conn.execute(_DDL)


def has_schema(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"{STATE_SCHEMA}.runs",)).fetchone()
    return row is not None and row[0] is not None


_COLUMNS = (
    "id, state, phase, environment, database, target, target_major, info, cancel_requested, "
    "host, pid, started_at, updated_at"
)


def _record(row: tuple[object, ...]) -> Record:
    info = row[7]
    return Record(
        id=str(row[0]),
        state=str(row[1]),
        phase=str(row[2]),
        environment=str(row[3]),
        database=str(row[4]),
        target=str(row[5]),
        target_major=int(str(row[6])),
        info=dict(info) if isinstance(info, dict) else {},
        cancel_requested=bool(row[8]),
        host=None if row[9] is None else str(row[9]),
        pid=None if row[10] is None else int(str(row[10])),
        started_at=row[11] if isinstance(row[11], datetime) else None,
        updated_at=row[12] if isinstance(row[12], datetime) else None,
    )


def _select(conn: Conn, where: str, params: tuple[object, ...]) -> Record | None:
    if not has_schema(conn):
        return None
    row = conn.execute(
        sql.SQL("SELECT " + _COLUMNS + " FROM {}.runs WHERE " + where).format(
            sql.Identifier(STATE_SCHEMA)
        ),
        params,
    ).fetchone()
    return None if row is None else _record(row)


def find_active(conn: Conn) -> Record | None:
    """The upgrade of this database that is not over (at most one)."""
    return _select(
        conn,
        "state = ANY(%s) AND database = current_database() ORDER BY started_at DESC LIMIT 1",
        (list(ACTIVE),),
    )


def find_latest(conn: Conn, upgrade_id: str | None = None) -> Record | None:
    """The upgrade `upgrade_id`, or the latest of this database."""
    if upgrade_id is not None:
        return _select(conn, "id = %s", (upgrade_id,))
    return _select(conn, "database = current_database() ORDER BY started_at DESC LIMIT 1", ())


def reload(conn: Conn, record: Record) -> Record:
    fresh = find_latest(conn, record.id)
    assert fresh is not None
    return fresh


def save(conn: Conn, record: Record) -> None:
    """Insert or update `record` (autocommit: visible to `status` at once)."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.runs (id, state, phase, environment, database, target, "
            "target_major, info, os_user, host, pid) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, phase = excluded.phase, "
            "info = excluded.info, host = excluded.host, pid = excluded.pid, "
            "updated_at = now()"
        ).format(sql.Identifier(STATE_SCHEMA)),
        (
            record.id,
            record.state,
            record.phase,
            record.environment,
            record.database,
            record.target,
            record.target_major,
            Jsonb(record.info),
            _os_user(),
            socket.gethostname(),
            os.getpid(),
        ),
    )


def request_cancel(conn: Conn, upgrade_id: str) -> None:
    conn.execute(
        sql.SQL(
            "UPDATE {}.runs SET cancel_requested = true, updated_at = now() WHERE id = %s"
        ).format(sql.Identifier(STATE_SCHEMA)),
        (upgrade_id,),
    )


def cancel_requested(conn: Conn, upgrade_id: str) -> bool:
    row = conn.execute(
        sql.SQL("SELECT cancel_requested FROM {}.runs WHERE id = %s").format(
            sql.Identifier(STATE_SCHEMA)
        ),
        (upgrade_id,),
    ).fetchone()
    return bool(row and row[0])


def lock_run(conn: Conn) -> bool:
    """Take the session-level lock that marks this process as the live run."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def run_is_live(conn: Conn) -> bool:
    """Whether a process holds the live-run lock on this cluster (not this session)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND ((classid::bigint << 32) | objid::bigint) = %s AND pid <> pg_backend_pid()",
        (LOCK_KEY,),
    ).fetchone()
    return bool(row and int(str(row[0])) > 0)


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def journal_line(upgrade_id: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"upgrade": upgrade_id, **payload}, default=str) + b"\n"
