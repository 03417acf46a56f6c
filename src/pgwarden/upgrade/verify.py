"""Row counts and per-table checksums of OLD and NEW, compared at the same LSN.

`consistent_snapshots` pauses writes to the published tables on OLD for a
moment (EXCLUSIVE locks: reads go on, writers queue, bounded by `pause_s`),
takes OLD's LSN, waits until NEW has applied it, opens a REPEATABLE READ
transaction on each side (their snapshots hold exactly the same rows) and
lets writes go on. The comparison then reads both snapshots while the
application keeps writing. A checksum is the sum of md5 digests of each
row's text form, so row order does not matter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.upgrade.logical import Table, replay_lsn

__all__ = ["NotCaughtUp", "Snapshots", "TableCheck", "compare", "consistent_snapshots"]

Conn = psycopg.Connection[tuple[object, ...]]


class NotCaughtUp(Exception):
    """NEW did not apply OLD's LSN within the pause; writes went on."""


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


def wait_applied(old: Conn, slot: str, lsn: str, deadline: float) -> bool:
    """Whether the receiver of `slot` applied `lsn` before `deadline` (monotonic)."""
    while True:
        got = replay_lsn(old, slot)
        if got is not None:
            row = old.execute("SELECT %s::pg_lsn >= %s::pg_lsn", (got, lsn)).fetchone()
            if row is not None and row[0]:
                return True
        if time.monotonic() >= deadline:
            return False
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
    locker, probe = old_dsn(), old_dsn()
    snap_old, snap_new = old_dsn(), new_dsn()
    try:
        for c in (snap_old, snap_new):
            c.autocommit = False
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        locker.autocommit = False
        started = time.monotonic()
        lock_tables(locker, tables, max(int(pause_s * 1000 / 2), 50))
        lsn_row = probe.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert lsn_row is not None
        lsn = str(lsn_row[0])
        if not wait_applied(probe, slot, lsn, started + pause_s):
            locker.rollback()
            raise NotCaughtUp(lsn)
        snap_old.execute("SELECT 1")  # the snapshot is taken by the first query
        snap_new.execute("SELECT 1")
        locker.rollback()
        paused = time.monotonic() - started
        yield Snapshots(snap_old, snap_new, lsn, paused)
    finally:
        for c in (locker, probe, snap_old, snap_new):
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
