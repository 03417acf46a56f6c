"""Row counts and per-table checksums of OLD and NEW, compared at the same LSN.

`consistent_snapshots` pauses writes to the published tables on OLD for a
moment (EXCLUSIVE locks: reads go on, writers queue, bounded by `pause_s`),
writes a marker row on OLD and waits until NEW has applied it (replication keeps
commit order, so NEW then holds every write OLD committed before), opens a REPEATABLE READ
transaction on each side (their snapshots hold exactly the same rows) and
lets writes go on. The comparison then reads both snapshots while the
application keeps writing. A checksum is the sum of md5 digests of each
row's text form, so row order does not matter.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.upgrade.logical import MARKER, Table

__all__ = [
    "ApplyFailing",
    "NotCaughtUp",
    "Snapshots",
    "TableCheck",
    "apply_errors",
    "compare",
    "consistent_snapshots",
]

Conn = psycopg.Connection[tuple[object, ...]]


class NotCaughtUp(Exception):
    """NEW did not apply OLD's LSN within the pause; writes went on."""


class ApplyFailing(Exception):
    """The receiver's apply worker failed on the sender's writes while we waited."""

    def __init__(self, subscription: str, errors: int) -> None:
        super().__init__(f"subscription {subscription}: {errors} apply error(s)")
        self.subscription = subscription
        self.errors = errors


def apply_errors(receiver: Conn, subscription: str) -> int | None:
    """The errors `subscription`'s apply worker has counted on `receiver` (None before
    PostgreSQL 15, which keeps no such count, or when the subscription is gone)."""
    if receiver.info.server_version < 150000:
        return None
    receiver.execute("SELECT pg_stat_clear_snapshot()")  # a fresh read in a transaction too
    row = receiver.execute(
        "SELECT apply_error_count FROM pg_stat_subscription_stats WHERE subname = %s",
        (subscription,),
    ).fetchone()
    return None if row is None else int(str(row[0]))


@dataclass(frozen=True, slots=True)
class Snapshots:
    old: Conn
    new: Conn
    lsn: str
    paused_s: float


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    rows_old: int
    rows_new: int
    sum_old: str
    sum_new: str

    @property
    def same(self) -> bool:
        return self.rows_old == self.rows_new and self.sum_old == self.sum_new


def lock_tables(conn: Conn, tables: list[Table], timeout_ms: int) -> None:
    """EXCLUSIVE locks on `tables` in `conn`'s open transaction (writes wait, reads go on)."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{timeout_ms}ms")))
    if tables:
        conn.execute(
            sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                sql.SQL(", ").join(t.ident for t in tables)
            )
        )


def wait_applied(
    sender: Conn, receiver: Conn, deadline: float, *, subscription: str | None = None
) -> str | None:
    """Write a marker row on `sender`; wait until `receiver` has applied it (then it has
    applied every transaction committed on `sender` before). The sender's LSN after the
    marker, or None when `deadline` (monotonic) passed first.

    With `subscription` (the one on `receiver` that carries the writes), raises
    `ApplyFailing` as soon as its apply worker counts a new error: a worker that fails
    on a row retries it forever, and the caller's writes stay paused for nothing.
    """
    errors = apply_errors(receiver, subscription) if subscription else None
    next_check = time.monotonic() + 0.25
    token = secrets.token_hex(8)
    marker = sql.Identifier(MARKER.schema, MARKER.name)
    # a flushed commit wakes the walsender now (not at the WAL writer's next round)
    with sender.transaction():
        sender.execute("SET LOCAL synchronous_commit = on")
        sender.execute(sql.SQL("INSERT INTO {} (id) VALUES (%s)").format(marker), (token,))
    row = sender.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    lsn = str(row[0])
    query = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(marker)
    while True:
        if receiver.execute(query, (token,)).fetchone() is not None:
            sender.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(marker), (token,))
            return lsn
        now = time.monotonic()
        if now >= deadline:
            return None
        if subscription and errors is not None and now >= next_check:
            next_check = now + 0.25
            count = apply_errors(receiver, subscription)
            if count is not None and count > errors:
                raise ApplyFailing(subscription, count - errors)
        time.sleep(0.005)


@contextmanager
def consistent_snapshots(
    old_dsn: Callable[[], Conn],
    new_dsn: Callable[[], Conn],
    tables: list[Table],
    slot: str,
    *,
    pause_s: float = 1.0,
) -> Iterator[Snapshots]:
    """Two REPEATABLE READ transactions, on OLD and NEW, seeing the same rows."""
    locker, probe, seen = old_dsn(), old_dsn(), new_dsn()
    snap_old, snap_new = old_dsn(), new_dsn()
    try:
        for c in (snap_old, snap_new):
            c.autocommit = False
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        locker.autocommit = False
        started = time.monotonic()
        lock_tables(locker, tables, max(int(pause_s * 1000 / 2), 50))
        applied = wait_applied(probe, seen, started + pause_s)
        if applied is None:
            locker.rollback()
            raise NotCaughtUp(slot)
        lsn = applied
        snap_old.execute("SELECT 1")  # the snapshot is taken by the first query
        snap_new.execute("SELECT 1")
        locker.rollback()
        paused = time.monotonic() - started
        yield Snapshots(snap_old, snap_new, lsn, paused)
    finally:
        for c in (locker, probe, seen, snap_old, snap_new):
            c.close()


def _digest(conn: Conn, table: Table) -> tuple[int, str]:
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint"
            "::numeric), 0)::text FROM {} t"
        ).format(table.ident)
    ).fetchone()
    assert row is not None
    return int(str(row[0])), str(row[1])


def compare(snaps: Snapshots, tables: list[Table]) -> Iterator[TableCheck]:
    """Each table's row count and checksum on both snapshots."""
    for table in tables:
        rows_old, sum_old = _digest(snaps.old, table)
        rows_new, sum_new = _digest(snaps.new, table)
        yield TableCheck(table.qualified, rows_old, rows_new, sum_old, sum_new)
