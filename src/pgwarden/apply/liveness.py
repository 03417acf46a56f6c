"""Is a run recorded as running really running? Its backend and its client, as the server sees them.

A run's *backend* is the `pgwarden-apply` session that runs its statements
(`pgwarden.runs.backend_pid`). Its *client* is the pgwarden process; the
server sees it through the run's watchdog session, which queries every 50 ms
(`watchdog.watchdog_name`): a watchdog session active within `client_gone_s`
(setting `watchdog.client_gone_s`, default `HEARTBEAT_S`, 15 s) is a live
client. A run recorded as running is then

- `running`: backend and client alive;
- `orphaned`: the backend is still there (running the step, idle in a
  transaction, or idle holding the apply lock) but its client is gone or cut
  off: killed, or its network black-holed (the server has not noticed);
- `interrupted`: no backend (the server restarted, the session was dropped).

`unit_report` says, checked in the catalog, what the step in flight left.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql

from pgwarden.apply.watchdog import watchdog_name
from pgwarden.settings import CLIENT_GONE_S
from pgwarden.sources.labels import statement_label

__all__ = [
    "HEARTBEAT_S",
    "Backend",
    "Life",
    "client_alive",
    "find_backend",
    "is_this_process",
    "life_of",
    "stop_backend",
    "unit_report",
]

HEARTBEAT_S = CLIENT_GONE_S
Life = Literal["running", "orphaned", "interrupted"]

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class Backend:
    """A run's backend as pg_stat_activity shows it."""

    pid: int
    state: str  # active, idle, idle in transaction, ...
    query: str  # pgwarden's own statement
    wait: str | None  # e.g. Lock/virtualxid
    seconds: float | None  # since the query started

    @property
    def busy(self) -> bool:
        """Running a statement or holding a transaction open."""
        return self.state != "idle"

    def describe(self) -> str:
        what = statement_label(self.query, 80)
        waiting = f", waiting for {self.wait}" if self.wait else ""
        age = f" for {self.seconds:.0f} s" if self.seconds is not None else ""
        if self.state == "active":
            return f"backend pid {self.pid} is running{age}{waiting}: {what}"
        return f"backend pid {self.pid} is {self.state}{age} (last statement: {what})"


def find_backend(conn: Conn, pid: int, started_at: datetime | None = None) -> Backend | None:
    """The `pgwarden-apply` session `pid` (started before the run), if it is still there."""
    since = sql.SQL("") if started_at is None else sql.SQL("AND backend_start <= {}")
    row = conn.execute(
        sql.SQL(
            "SELECT pid, coalesce(state, ''), coalesce(query, ''), "
            "wait_event_type || '/' || wait_event, "
            "extract(epoch FROM now() - query_start)::float8 "
            "FROM pg_stat_activity WHERE pid = {} AND application_name = 'pgwarden-apply' "
        ).format(sql.Literal(pid))
        + since.format(sql.Literal(started_at))
    ).fetchone()
    if row is None:
        return None
    p, state, query, wait, secs = row
    return Backend(
        int(str(p)),
        str(state),
        str(query),
        None if wait is None else str(wait),
        None if secs is None else float(str(secs)),
    )


def client_alive(conn: Conn, run_id: str, client_gone_s: float = HEARTBEAT_S) -> bool:
    """The run's watchdog session queried within the last `client_gone_s` seconds."""
    row = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = {} "
            "AND state_change > now() - make_interval(secs => {}))"
        ).format(sql.Literal(watchdog_name(run_id)), sql.Literal(client_gone_s))
    ).fetchone()
    return bool(row and row[0])


def is_this_process(host: object, client_pid: object) -> bool:
    """The run's client is this very process (it lost that run's connection)."""
    return str(host) == socket.gethostname() and str(client_pid) == str(os.getpid())


def life_of(
    conn: Conn,
    run_id: str,
    backend_pid: int,
    started_at: datetime | None,
    *,
    client_gone: bool = False,
    client_gone_s: float = HEARTBEAT_S,
) -> tuple[Life, Backend | None]:
    """What a run recorded as running really is, and its backend if any (its client is
    gone when `client_gone`, or when its watchdog has been silent for `client_gone_s`)."""
    backend = find_backend(conn, backend_pid, started_at)
    if backend is None:
        return "interrupted", None
    if client_gone or not client_alive(conn, run_id, client_gone_s):
        return "orphaned", backend
    return "running", backend


def stop_backend(conn: Conn, pid: int, *, terminate: bool, wait_s: float = 10.0) -> bool:
    """pg_cancel_backend (the statement) or pg_terminate_backend (the session) `pid`, then
    wait until it took effect: not active any more, or gone. False if it did not in time."""
    fn = "pg_terminate_backend" if terminate else "pg_cancel_backend"
    conn.execute(sql.SQL("SELECT {}({})").format(sql.Identifier(fn), sql.Literal(pid)))
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute(
            sql.SQL("SELECT state FROM pg_stat_activity WHERE pid = {}").format(sql.Literal(pid))
        ).fetchone()
        if row is None or (not terminate and row[0] != "active"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def unit_report(conn: Conn, run_id: str) -> list[str]:
    """What the run's steps in flight (state running) left, checked in the catalog."""
    from pgwarden.apply.indexes import builds_index, index_name
    from pgwarden.apply.journal import plan_from_records

    row = conn.execute(
        sql.SQL("SELECT plan FROM pgwarden.runs WHERE id = {}").format(sql.Literal(run_id))
    ).fetchone()
    records: Any = row[0] if row else None
    if not isinstance(records, list):
        return []
    steps = conn.execute(
        sql.SQL(
            "SELECT s.idx, EXISTS (SELECT 1 FROM pgwarden.applied a WHERE a.key = s.key) "
            "FROM pgwarden.steps s WHERE s.run_id = {} AND s.state = 'running' ORDER BY s.idx"
        ).format(sql.Literal(run_id))
    ).fetchall()
    report = []
    for idx, applied in steps:
        i = int(str(idx))
        if applied:
            report.append(f"step {i} is applied (committed and recorded)")
            continue
        try:
            step = plan_from_records(records, conn.info.server_version // 10000).steps[i]
        except Exception:  # a plan this version cannot rebuild: say what is known
            report.append(f"step {i} is not recorded as applied")
            continue
        if not builds_index(step):
            what = "rolled back" if step.effects.transactional else "not recorded as applied"
            report.append(f"step {i} is not applied ({what})")
            continue
        name = index_name(step)
        if name is None:
            report.append(f"step {i} is not recorded as applied")
            continue
        valid = conn.execute(
            sql.SQL("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass({})").format(
                sql.Literal(name)
            )
        ).fetchone()
        if valid is None:
            report.append(f"step {i}: index {name} does not exist (nothing left to clean up)")
        elif valid[0]:
            report.append(
                f"step {i}: index {name} was built and is valid (`pgwarden resume` records it)"
            )
        else:
            report.append(
                f"step {i}: index {name} is INVALID, left by the interrupted build "
                "(`pgwarden resume` drops and rebuilds it)"
            )
    return report
