"""Health gate: before each step or batch, wait until the database can take more work.

Checked: connections vs max_connections, sessions waiting on locks,
long-running transactions, replication lag when replicas exist. While
unhealthy, the gate pauses (emitting `health_pause` with the reason) until
healthy or the deadline passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.apply.events import HealthPause, Observer

__all__ = ["Health", "HealthPolicy", "check_health", "wait_until_healthy"]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Limits that make the database too busy for the next step."""

    max_connections_ratio: float = 0.8
    max_lock_waiters: int = 5
    max_transaction_age_s: float = 600.0
    max_replication_lag_bytes: int = 256 * 1024 * 1024
    deadline_s: float = 300.0
    poll_interval_ms: int = 500


@dataclass(frozen=True, slots=True)
class Health:
    """One reading of the gate's signals."""

    connections: int
    max_connections: int
    lock_waiters: int
    oldest_transaction_s: float
    replication_lag_bytes: int | None
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons


_READ = sql.SQL(
    """
    SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
           current_setting('max_connections')::int,
           (SELECT count(*) FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND pid <> ALL ({ours}::int[])),
           coalesce((SELECT extract(epoch FROM max(now() - xact_start))::float8
                       FROM pg_stat_activity
                      WHERE state <> 'idle' AND backend_type = 'client backend'
                        AND pid <> ALL ({ours}::int[])), 0),
           (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::bigint
              FROM pg_stat_replication)
    """
)


def check_health(
    conn: psycopg.Connection[tuple[object, ...]],
    policy: HealthPolicy,
    our_pids: Sequence[int] = (),
) -> Health:
    """Read the signals and list what is over its limit."""
    row = conn.execute(_READ.format(ours=sql.Literal(list(our_pids)))).fetchone()
    assert row is not None
    conns, max_conns, waiters = int(str(row[0])), int(str(row[1])), int(str(row[2]))
    oldest = float(str(row[3]))
    lag = None if row[4] is None else int(str(row[4]))
    reasons = []
    if conns > policy.max_connections_ratio * max_conns:
        reasons.append(f"{conns} of {max_conns} connections in use")
    if waiters > policy.max_lock_waiters:
        reasons.append(f"{waiters} sessions waiting on locks")
    if oldest > policy.max_transaction_age_s:
        reasons.append(f"a transaction has been running for {oldest:.0f} s")
    if lag is not None and lag > policy.max_replication_lag_bytes:
        reasons.append(f"replication lag {lag / 1048576:.0f} MB")
    return Health(conns, max_conns, waiters, oldest, lag, tuple(reasons))


def wait_until_healthy(
    conn: psycopg.Connection[tuple[object, ...]],
    policy: HealthPolicy,
    *,
    cancel: threading.Event,
    emit: Observer,
    step: int | None,
    our_pids: Sequence[int] = (),
) -> Health:
    """Return the first healthy reading, or the last one at the deadline or on cancel."""
    deadline = time.monotonic() + policy.deadline_s
    last: tuple[str, ...] = ()
    while True:
        health = check_health(conn, policy, our_pids)
        if health.ok or time.monotonic() >= deadline:
            return health
        if health.reasons != last:
            emit(HealthPause(step=step, reasons=tuple(health.reasons)))
            last = health.reasons
        if cancel.wait(policy.poll_interval_ms / 1000):
            return health
