"""Lock guard: timeout and retry policy, retry decisions by SQLSTATE, blockers.

Every statement pgwarden runs is bounded by `lock_timeout` and
`statement_timeout`; a lock that is not granted in time is retried after an
exponential, jittered backoff within a total budget. There is never an attempt
without a lock timeout (GitLab's helper makes its last attempt with none).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.analysis.effects import LockMode
from pgwarden.apply.events import Blocker

__all__ = [
    "Failure",
    "LockPolicy",
    "backoff_ms",
    "classify",
    "find_blockers",
    "set_timeouts",
    "terminate_idle_blockers",
]


@dataclass(frozen=True, slots=True)
class LockPolicy:
    """How long one attempt may wait and run, and how retries are spaced."""

    lock_timeout_ms: int = 500
    statement_timeout_ms: int = 3_600_000
    max_attempts: int = 200
    backoff_initial_ms: int = 200
    backoff_max_ms: int = 5_000
    backoff_multiplier: float = 2.0
    jitter_ratio: float = 0.5  # a delay is drawn from [d * (1 - ratio), d]
    total_budget_ms: int = 600_000

    def __post_init__(self) -> None:
        if self.lock_timeout_ms <= 0:
            raise ValueError("lock_timeout_ms must be positive: never wait without a timeout")
        if self.statement_timeout_ms <= 0:
            raise ValueError("statement_timeout_ms must be positive")
        if not 0.0 <= self.jitter_ratio <= 1.0:
            raise ValueError("jitter_ratio must be within [0, 1]")


def backoff_ms(policy: LockPolicy, attempt: int, rng: random.Random | None = None) -> int:
    """Delay before attempt `attempt + 1` (attempt counts from 1)."""
    base = min(
        float(policy.backoff_max_ms),
        policy.backoff_initial_ms * policy.backoff_multiplier ** max(0, attempt - 1),
    )
    r = (rng or random).random()
    return int(base * (1.0 - policy.jitter_ratio * r))


class Failure(Enum):
    """What kind of failure an exception is, decided by type and SQLSTATE class."""

    LOCK = "lock"  # lock_timeout or deadlock: retry
    CANCELED = "canceled"  # 57014: statement_timeout, our watchdog, or a user cancel
    CONNECTION = "connection"  # the session or server went away
    PERMISSION = "permission"  # 42501
    STATEMENT = "statement"  # anything else the statement did wrong


def classify(exc: BaseException) -> Failure:
    """The failure kind of a psycopg exception (never from message text)."""
    if isinstance(exc, pge.LockNotAvailable | pge.DeadlockDetected):
        return Failure.LOCK
    if isinstance(exc, pge.QueryCanceled):
        return Failure.CANCELED
    if isinstance(exc, pge.InsufficientPrivilege):
        return Failure.PERMISSION
    state = getattr(exc, "sqlstate", None)
    if state is not None and (state.startswith("08") or state in ("57P01", "57P02", "57P03")):
        return Failure.CONNECTION
    if isinstance(exc, psycopg.OperationalError) and state is None:
        return Failure.CONNECTION
    if isinstance(exc, psycopg.InterfaceError):
        return Failure.CONNECTION
    return Failure.STATEMENT


def set_timeouts(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    lock_timeout_ms: int,
    statement_timeout_ms: int,
    local: bool,
) -> None:
    """Set both timeouts for the session, or for the current transaction (`local`)."""
    conn.execute(
        sql.SQL(
            "SELECT set_config('lock_timeout', {}, {}), set_config('statement_timeout', {}, {})"
        ).format(
            sql.Literal(f"{lock_timeout_ms}ms"),
            sql.Literal(local),
            sql.Literal(f"{statement_timeout_ms}ms"),
            sql.Literal(local),
        )
    )


CLIENT_CHECK_MS = 1000  # client_connection_check_interval of a transaction apply runs


def client_check_supported(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether this server can notice a vanished client while a query runs
    (`client_connection_check_interval`: PostgreSQL 14+, on Linux and a few other
    kernels; elsewhere it refuses any value but 0). Leaves the session's value as it was."""
    if conn.info.server_version < 140000:
        return False
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("SELECT set_config('client_connection_check_interval', {}, true)").format(
                    sql.Literal(f"{CLIENT_CHECK_MS}ms")
                )
            )
    except psycopg.errors.InvalidParameterValue:
        return False
    return True


def check_client(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """In the current transaction, have the server check every CLIENT_CHECK_MS that its
    client is still there: a killed apply's statement is cancelled and its transaction
    rolled back within a second, instead of holding its locks until the statement ends
    (no watchdog is left to cancel it)."""
    conn.execute(
        sql.SQL("SELECT set_config('client_connection_check_interval', {}, true)").format(
            sql.Literal(f"{CLIENT_CHECK_MS}ms")
        )
    )


_BLOCKERS = sql.SQL(
    """
    SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
           extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''),
           a.wait_event_type, l.relation::regclass::text, l.mode
      FROM pg_locks l
      JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'relation'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.relation = ANY (SELECT to_regclass(n)::oid FROM unnest({names}::text[]) n)
       AND l.pid <> ALL ({ours}::int[])
     ORDER BY a.xact_start NULLS LAST
    """
)


def find_blockers(
    conn: psycopg.Connection[tuple[object, ...]],
    wanted: dict[str, LockMode],
    exclude_pids: Sequence[int],
) -> list[Blocker]:
    """Sessions holding or queueing for a lock that conflicts with `wanted`."""
    if not wanted:
        return []
    rows = conn.execute(
        _BLOCKERS.format(names=sql.Literal(list(wanted)), ours=sql.Literal(list(exclude_pids)))
    ).fetchall()
    resolved = _resolve(conn, wanted)
    out: dict[int, Blocker] = {}
    for pid, app, state, age, query, wait, rel, mode in rows:
        try:
            theirs = LockMode.from_pg_name(str(mode))
        except ValueError:
            continue
        ours = resolved.get(str(rel))
        if ours is None or not ours.conflicts_with(theirs) or int(str(pid)) in out:
            continue
        out[int(str(pid))] = Blocker(
            pid=int(str(pid)),
            application=str(app),
            state=str(state),
            xact_age_s=float(str(age)) if age is not None else None,
            query=str(query),
            wait_event_type=None if wait is None else str(wait),
            relation=str(rel),
            mode=str(mode),
        )
    return list(out.values())


def _resolve(
    conn: psycopg.Connection[tuple[object, ...]], wanted: dict[str, LockMode]
) -> dict[str, LockMode]:
    """`wanted` keyed by how regclass prints each relation here."""
    names = list(wanted)
    rows = conn.execute(
        sql.SQL("SELECT n, to_regclass(n)::text FROM unnest({}::text[]) n").format(
            sql.Literal(names)
        )
    ).fetchall()
    out: dict[str, LockMode] = {}
    for name, printed in rows:
        if printed is not None:
            mode = wanted[str(name)]
            out[str(printed)] = max(mode, out.get(str(printed), mode))
    return out


def terminate_idle_blockers(
    conn: psycopg.Connection[tuple[object, ...]], blockers: Iterable[Blocker], after_s: float
) -> list[Blocker]:
    """pg_terminate_backend the blockers idle in a transaction for at least `after_s`."""
    done = []
    for b in blockers:
        idle = b.state in ("idle in transaction", "idle in transaction (aborted)")
        if idle and b.xact_age_s is not None and b.xact_age_s >= after_s:
            conn.execute(sql.SQL("SELECT pg_terminate_backend({})").format(sql.Literal(b.pid)))
            done.append(b)
    return done
