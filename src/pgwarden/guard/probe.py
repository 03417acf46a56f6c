"""Pooled connections, with a short `lock_timeout` for the half-open breaker's probe.

A probe is one real request sent to a database that recently failed. When a migration
still holds its lock, the probe should find out in `BreakerPolicy.probe_lock_timeout_ms`,
not in the application's normal `lock_timeout`. The probe's connection gets the short
value as a session setting before the application uses it and `RESET` (back to the value
the connection was opened with) when it goes back to the pool; a connection that cannot
be reset is closed, so the pool replaces it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

__all__ = ["checkout", "checkout_async", "probe_lock_timeout_ms"]

_SET = sql.SQL("SELECT set_config('lock_timeout', {}, false)")
_RESET = sql.SQL("RESET lock_timeout")


def probe_lock_timeout_ms(probe_ms: int | None, normal_ms: int | None) -> int | None:
    """The probe's lock_timeout: the shorter of the two (None: no probe setting)."""
    if probe_ms is None:
        return None
    return probe_ms if normal_ms is None else min(probe_ms, normal_ms)


def _set_query(ms: int) -> sql.Composed:
    return _SET.format(sql.Literal(f"{ms}ms"))


@contextlib.contextmanager
def checkout(
    pool: psycopg_pool.ConnectionPool[psycopg.Connection[TupleRow]], lock_timeout_ms: int | None
) -> Iterator[psycopg.Connection[TupleRow]]:
    """`pool.connection()`, with `lock_timeout_ms` (when given) for this use only."""
    if lock_timeout_ms is None:
        with pool.connection() as conn:
            yield conn
        return
    conn = pool.getconn()
    try:
        conn.execute(_set_query(lock_timeout_ms))
        conn.commit()  # a session setting, whatever the application's transaction does
        with conn:  # commit on success, roll back on error, as pool.connection() does
            yield conn
    finally:
        try:
            _reset(conn)
        finally:
            pool.putconn(conn)


def _reset(conn: psycopg.Connection[TupleRow]) -> None:
    """Back to the connection's own lock_timeout, or closed (the pool replaces it)."""
    try:
        if conn.pgconn.transaction_status == TransactionStatus.IDLE:
            conn.execute(_RESET)
            conn.commit()
            return
    except psycopg.Error:
        pass
    conn.close()


@contextlib.asynccontextmanager
async def checkout_async(
    pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]],
    lock_timeout_ms: int | None,
) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """`pool.connection()`, with `lock_timeout_ms` (when given) for this use only."""
    if lock_timeout_ms is None:
        async with pool.connection() as conn:
            yield conn
        return
    conn = await pool.getconn()
    try:
        await conn.execute(_set_query(lock_timeout_ms))
        await conn.commit()
        async with conn:
            yield conn
    finally:
        try:
            await _reset_async(conn)
        finally:
            await pool.putconn(conn)


async def _reset_async(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    """Back to the connection's own lock_timeout, or closed (the pool replaces it)."""
    try:
        if conn.pgconn.transaction_status == TransactionStatus.IDLE:
            await conn.execute(_RESET)
            await conn.commit()
            return
    except psycopg.Error:
        pass
    await conn.close()
