"""Classify the outcome of database work by exception class and SQLSTATE, never message text."""

from __future__ import annotations

import enum

import psycopg
import psycopg_pool

from pgwarden.guard.errors import DatabaseUnavailable, Shed

__all__ = [
    "FAILURE_SQLSTATES",
    "FAILURE_SQLSTATE_CLASSES",
    "Outcome",
    "attempt_kind",
    "classify",
    "failure_kind",
]


class Outcome(enum.Enum):
    """What a finished unit of database work tells the breaker and the limiter."""

    SUCCESS = "success"
    FAILURE = "failure"  # the database is unavailable, overloaded or locked
    IGNORE = "ignore"  # says nothing about database health (app error, cancellation)


# SQLSTATE classes meaning "the database cannot serve this now".
FAILURE_SQLSTATE_CLASSES: frozenset[str] = frozenset(
    {
        "08",  # connection_exception
        "53",  # insufficient_resources (too_many_connections, out_of_memory, disk_full)
        "57",  # operator_intervention (query_canceled = statement_timeout, admin_shutdown, ...)
        "58",  # system_error
    }
)
# Single SQLSTATEs outside those classes.
FAILURE_SQLSTATES: frozenset[str] = frozenset(
    {
        "55P03",  # lock_not_available (lock_timeout)
        "25P03",  # idle_in_transaction_session_timeout
    }
)


# What a failure was, for messages: by SQLSTATE, then by its class (never by message text).
_KINDS: dict[str, str] = {
    "55P03": "lock timeout",
    "57014": "statement timeout",  # query_canceled: statement_timeout, or a cancel request
    "25P03": "idle-in-transaction timeout",
    "57P01": "server shutting down",
    "57P02": "server shutting down",
    "57P03": "server not accepting connections",
    "53300": "too many connections",
    "08": "connection failure",
    "53": "insufficient resources",
    "57": "operator intervention",
    "58": "system error",
}


def _one(exc: BaseException) -> Outcome | None:
    if isinstance(exc, DatabaseUnavailable):
        return Outcome.FAILURE
    if isinstance(exc, Shed):
        return Outcome.IGNORE
    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg_pool.TooManyRequests):
        return Outcome.FAILURE
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:
            # Client-side: refused, reset, connect timeout, lost connection.
            if isinstance(exc, psycopg.OperationalError):
                return Outcome.FAILURE
            return None
        if state in FAILURE_SQLSTATES or state[:2] in FAILURE_SQLSTATE_CLASSES:
            return Outcome.FAILURE
    return None


def classify(exc: BaseException | None) -> Outcome:
    """SUCCESS for None; FAILURE when `exc` or a cause means the database is unavailable."""
    if exc is None:
        return Outcome.SUCCESS
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        found = _one(cur)
        if found is not None:
            return found
        cur = cur.__cause__ or cur.__context__
    return Outcome.IGNORE


def _kind(exc: BaseException) -> str:
    if isinstance(exc, DatabaseUnavailable):  # the pool's: it names what it knows
        return exc.failure or f"database unavailable ({type(exc).__name__})"
    # before psycopg.Error: both are OperationalErrors without a SQLSTATE
    if isinstance(exc, psycopg_pool.TooManyRequests):
        return "pool queue full (TooManyRequests)"
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return "no pooled connection in time (PoolTimeout)"
    if isinstance(exc, psycopg.Error):
        name = type(exc).__name__
        state = exc.sqlstate
        if state is None:  # client-side: refused, reset, connect timeout, lost connection
            return f"connection failure (no SQLSTATE, {name})"
        kind = _KINDS.get(state) or _KINDS.get(state[:2], "database error")
        return f"{kind} (SQLSTATE {state} {name})"
    return f"database unavailable ({type(exc).__name__})"


def attempt_kind(exc: BaseException) -> str:
    """What a failed connection attempt was, by SQLSTATE and class, for messages (libpq
    reports most start-up failures without a SQLSTATE: 'connection failure')."""
    return _kind(exc)


def failure_kind(exc: BaseException | None) -> str | None:
    """What made `exc` a failure, for messages: e.g. 'lock timeout (SQLSTATE 55P03
    LockNotAvailable)'; None when `exc` (or its causes) is no database failure. Named by
    SQLSTATE and exception class only: no message text, so no conninfo, no password."""
    seen: set[int] = set()
    cur = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        found = _one(cur)
        if found is Outcome.FAILURE:
            return _kind(cur)
        if found is not None:
            return None
        cur = cur.__cause__ or cur.__context__
    return None
