"""Probe clients: the application's reads and writes on every touched table.

Each table gets a reader (point SELECT by key) and a writer (alternating a
point UPDATE and an INSERT of a fresh synthetic row), each on its own
autocommit connection, in a loop with a short pause. Every operation's
interval is kept; an operation counts as blocked when the sampler saw its
backend waiting for a lock while it ran, and then its whole latency counts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pgwarden.rehearse.datagen import Table, insert_one, key_lookup, value
from pgwarden.threads import Background

__all__ = ["Op", "Probe", "ProbeSet"]

_FRESH = 1_000_000  # a writer's INSERT i is row _FRESH + rows + i of its table


@dataclass(frozen=True, slots=True)
class Op:
    """One probe operation: [start_s, end_s] since the rehearsal's t0."""

    start_s: float
    end_s: float
    error: str | None = None


@dataclass(slots=True)
class Probe:
    """One probe client: a table, a kind (read or write), its backend pid, its ops."""

    table: str
    kind: str
    pid: int = 0
    ops: list[Op] = field(default_factory=list)
    started: int = 0  # ops begun
    last_start_s: float = -1.0
    in_flight_since: float | None = None


class ProbeSet:
    """Reader and writer probes on `tables`, running in background threads."""

    def __init__(
        self,
        dsn: str,
        tables: Mapping[str, Table],
        names: list[str],
        t0: float,
        *,
        pause_s: float = 0.003,
    ) -> None:
        self._dsn = dsn
        self._tables = tables
        self._t0 = t0
        self._pause = pause_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.probes = [Probe(n, k) for n in names for k in ("read", "write")]
        self._conns: list[psycopg.Connection[tuple[object, ...]]] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for p in self.probes:
            conn = psycopg.connect(
                self._dsn, autocommit=True, application_name=f"pgwarden-probe-{p.kind}"
            )
            self._conns.append(conn)
            p.pid = conn.info.backend_pid
            th = Background(target=self._loop, args=(p, conn), daemon=True)
            self._threads.append(th)
        for thread in self._threads:
            thread.start()

    def _statements(self, p: Probe, i: int) -> sql.Composed:
        t = self._tables[p.table]
        rows = max(t.rows, 1)
        g = 1 + (i * 7919) % rows
        if p.kind == "read":
            return sql.SQL("SELECT * FROM {} WHERE {} LIMIT 1").format(
                sql.SQL(p.table), key_lookup(self._tables, p.table, g)
            )
        if i % 2 == 0:
            return insert_one(self._tables, p.table, _FRESH + rows + i)
        settable = [c for c in t.columns if not c.generated and c.identity != "a" and not c.unique]
        col = settable[0] if settable else None
        if col is None:
            return sql.SQL("SELECT 1 FROM {} WHERE {} FOR UPDATE").format(
                sql.SQL(p.table), key_lookup(self._tables, p.table, g)
            )
        return sql.SQL("UPDATE {t} SET {c} = {c} WHERE {w}").format(
            t=sql.SQL(p.table), c=sql.Identifier(col.name), w=key_lookup(self._tables, p.table, g)
        )

    def _loop(self, p: Probe, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            stmt = self._statements(p, i)
            start = time.perf_counter() - self._t0
            with self._lock:
                p.started += 1
                p.last_start_s = start
                p.in_flight_since = start
            error = None
            try:
                conn.execute(stmt)
            except psycopg.Error as exc:
                if self._stop.is_set() or conn.closed:
                    return
                error = exc.sqlstate or type(exc).__name__
            end = time.perf_counter() - self._t0
            with self._lock:
                p.ops.append(Op(start, end, error))
                p.in_flight_since = None
            self._stop.wait(self._pause if error is None else 0.05)

    def all_started_since(self, t: float) -> list[Probe]:
        """Probes that have not yet begun an operation at or after `t`."""
        with self._lock:
            return [p for p in self.probes if p.last_start_s < t]

    def null_rows(
        self, conn: psycopg.Connection[tuple[object, ...]], table: str, column: str
    ) -> tuple[int, int] | None:
        """Rows of `table` with NULL in `column`: all of them, and those the writer probe
        inserted (by their keys); None when that cannot be told (no probe, no key)."""
        name = next((n for n in self._tables if n == table or n.endswith(f".{table}")), None)
        writer = next((p for p in self.probes if p.table == name and p.kind == "write"), None)
        if name is None or writer is None or not self._tables[name].keys:
            return None
        t = self._tables[name]
        g, lo = sql.SQL("g"), _FRESH + max(t.rows, 1)
        keys = t.keys[0]
        query = sql.SQL(
            "SELECT count(*), count(*) FILTER (WHERE ({k}) IN (SELECT {v} FROM "
            "generate_series({lo}::bigint, {hi}::bigint) AS s(g))) FROM {t} WHERE {c} IS NULL"
        ).format(
            k=sql.SQL(", ").join(sql.Identifier(k) for k in keys),
            v=sql.SQL(", ").join(value(self._tables, name, k, g) for k in keys),
            lo=sql.Literal(lo + 1),
            hi=sql.Literal(lo + writer.started),
            t=sql.SQL(name),
            c=sql.Identifier(column),
        )
        try:
            row = conn.execute(query).fetchone()
        except psycopg.Error:  # the key changed with the migration: not told
            return None
        return (int(str(row[0])), int(str(row[1]))) if row is not None else None

    def stop(self) -> None:
        self._stop.set()
        for conn in self._conns:
            with contextlib.suppress(psycopg.Error, AttributeError):
                conn.cancel_safe(timeout=2)
        for th in self._threads:
            th.join(timeout=5)
        for conn in self._conns:
            conn.close()
