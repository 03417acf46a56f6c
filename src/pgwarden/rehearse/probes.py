"""Probe clients: the application's reads and writes on every touched table.

Each table gets a reader (point SELECT by key) and a writer (alternating a
point UPDATE and an INSERT of a fresh synthetic row), each on its own
autocommit connection, in a loop with a short pause. Every operation's
interval is kept; an operation counts as blocked when the sampler saw its
backend waiting for a lock while it ran, and then its whole latency counts.
An INSERT takes a row whose unique keys no row has (rehearse/fresh.py); a
table whose keys hold no more (a `char(2)` key with its 1,296 rows) gets an
UPDATE instead, and `notes` says so, as it says which writes failed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pgwarden.rehearse.datagen import Table, insert_one, key_lookup, value
from pgwarden.rehearse.fresh import FreshRows, fresh_base, fresh_rows
from pgwarden.threads import Background

__all__ = ["Op", "Probe", "ProbeSet"]


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
    inserts: list[int] = field(default_factory=list)  # row numbers of the INSERTs tried
    inserted: list[int] = field(default_factory=list)  # ... and of those that succeeded
    inserted_set: set[int] = field(default_factory=set)
    static_used: int = 0  # row numbers taken from its own FreshRows
    follow_at: int = 0  # next of the first parent's inserted rows to look at (1:1 child)
    no_key_since: float | None = None  # when the writer found no fresh key left
    # failed operations by (INSERT/UPDATE/SELECT, SQLSTATE): count, first message, first time
    failures: dict[tuple[str, str], tuple[int, str, float]] = field(default_factory=dict)


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
        self.fresh: dict[str, FreshRows] = {}
        self.feeders: list[Probe] = []  # INSERT-only writers of untouched parents

    def start(self) -> None:
        base = fresh_base(self._tables)
        for p in self.probes:
            conn = self._connect(p)
            if p.kind == "write":  # before any probe runs: against the loaded rows
                self.fresh[p.table] = fresh_rows(conn, self._tables, p.table, base)
        # parents of a 1:1 child that the plan does not touch: a feeder inserts their rows
        # (nothing else, and it is not measured), so that the child's writer can insert
        needed = [t for f in self.fresh.values() for t in f.follows]
        while needed:
            table = needed.pop()
            if table in self.fresh or table not in self._tables:
                continue
            feeder = Probe(table, "feed")
            self.feeders.append(feeder)
            self.fresh[table] = fresh_rows(self._connect(feeder), self._tables, table, base)
            needed += self.fresh[table].follows
        for thread in self._threads:
            thread.start()

    def _connect(self, p: Probe) -> psycopg.Connection[tuple[object, ...]]:
        """`p`'s own autocommit session and the thread that will run it."""
        conn = psycopg.connect(
            self._dsn, autocommit=True, application_name=f"pgwarden-probe-{p.kind}"
        )
        self._conns.append(conn)
        p.pid = conn.info.backend_pid
        self._threads.append(Background(target=self._loop, args=(p, conn), daemon=True))
        return conn

    def _writer(self, table: str) -> Probe | None:
        return next(
            (q for q in self.probes + self.feeders if q.table == table and q.kind != "read"),
            None,
        )

    def _followed(self, p: Probe, fresh: FreshRows) -> tuple[int | None, bool]:
        """A row every parent's writer inserted that `p` has not taken (None: none yet), and
        whether there never will be one (a parent without a writer)."""
        writers = [self._writer(t) for t in fresh.follows]
        if any(w is None for w in writers):
            return None, True
        first, others = writers[0], writers[1:]
        assert first is not None
        while p.follow_at < len(first.inserted):
            g = first.inserted[p.follow_at]
            if all(g in w.inserted_set for w in others if w is not None):
                p.follow_at += 1
                return g, False
            # each writer's row numbers grow: one past g that lacks it never inserts it
            if any(
                w is not None and g not in w.inserted_set and w.inserts and w.inserts[-1] >= g
                for w in others
            ):
                p.follow_at += 1
                continue
            return None, False
        return None, False

    def _fresh_row(self, p: Probe, now: float) -> int | None:
        """The row number of `p`'s next INSERT: one whose keys no row has; None if none."""
        with self._lock:
            fresh = self.fresh[p.table]
            g = fresh.take(p.static_used + 1)
            if g is not None:
                p.static_used += 1
            elif fresh.follows:
                g, never = self._followed(p, fresh)
                if never and p.no_key_since is None:
                    p.no_key_since = now
            elif p.no_key_since is None:
                p.no_key_since = now
            if g is None:
                return None
            p.inserts.append(g)
            return g

    def _statements(
        self, p: Probe, i: int, now: float
    ) -> tuple[str, sql.Composed | None, int | None]:
        """The operation's verb, statement and, for an INSERT, its row number (a feeder with
        no row to insert yet: no statement)."""
        t = self._tables[p.table]
        rows = max(t.rows, 1)
        g = 1 + (i * 7919) % rows
        if p.kind == "read":
            return (
                "SELECT",
                sql.SQL("SELECT * FROM {} WHERE {} LIMIT 1").format(
                    sql.SQL(p.table), key_lookup(self._tables, p.table, g)
                ),
                None,
            )
        if p.kind == "feed":
            new = self._fresh_row(p, now)
            return "INSERT", None if new is None else insert_one(self._tables, p.table, new), new
        if i % 2 == 0 and (new := self._fresh_row(p, now)) is not None:
            return "INSERT", insert_one(self._tables, p.table, new), new
        settable = [c for c in t.columns if not c.generated and c.identity != "a" and not c.unique]
        col = settable[0] if settable else None
        if col is None:
            return (
                "SELECT FOR UPDATE",
                sql.SQL("SELECT 1 FROM {} WHERE {} FOR UPDATE").format(
                    sql.SQL(p.table), key_lookup(self._tables, p.table, g)
                ),
                None,
            )
        return (
            "UPDATE",
            sql.SQL("UPDATE {t} SET {c} = {c} WHERE {w}").format(
                t=sql.SQL(p.table),
                c=sql.Identifier(col.name),
                w=key_lookup(self._tables, p.table, g),
            ),
            None,
        )

    def _loop(self, p: Probe, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            verb, stmt, new = self._statements(p, i, time.perf_counter() - self._t0)
            if stmt is None:  # a feeder with nothing to insert
                self._stop.wait(self._pause + 0.01)
                continue
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
                said = str(exc).strip().splitlines()
                # when it failed, not when it began: a request that waited on a step's lock
                # fails because of that step, though it began before it
                failed = time.perf_counter() - self._t0
                with self._lock:
                    n, first, at = p.failures.get(
                        (verb, error), (0, said[0] if said else "", failed)
                    )
                    p.failures[verb, error] = (n + 1, first, at)
            end = time.perf_counter() - self._t0
            with self._lock:
                p.ops.append(Op(start, end, error))
                p.in_flight_since = None
                if new is not None and error is None:
                    p.inserted.append(new)
                    p.inserted_set.add(new)
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
        g = sql.SQL("g")
        keys = self._tables[name].keys[0]

        def count() -> tuple[object, ...] | None:
            with self._lock:
                tried = list(writer.inserts)
            query = sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE ({k}) IN (SELECT {v} FROM "
                "unnest({tried}::bigint[]) AS s(g))) FROM {t} WHERE {c} IS NULL"
            ).format(
                k=sql.SQL(", ").join(sql.Identifier(k) for k in keys),
                v=sql.SQL(", ").join(value(self._tables, name, k, g) for k in keys),
                tried=sql.Literal(tried),
                t=sql.SQL(name),
                c=sql.Identifier(column),
            )
            return conn.execute(query).fetchone()

        try:
            if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
                row = count()
            else:
                # The snapshot first, then the keys: a writer notes a key before it sends
                # its INSERT, so every probe row the count sees is among the keys read after
                # (read before it, a row inserted in between counted as the fill's own).
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    conn.execute("SELECT 1")
                    row = count()
        except psycopg.Error:  # the key changed with the migration: not told
            return None
        return (int(str(row[0])), int(str(row[1]))) if row is not None else None

    def _no_key_note(self, p: Probe, fresh: FreshRows) -> str:
        unprobed = [t for t in fresh.follows if self._writer(t) is None]
        if unprobed and fresh.size() == 0:
            return (
                f"probe traffic on {p.table}: no INSERT, since {fresh.why} and "
                f"{', '.join(unprobed)} get no probe INSERTs (the plan does not touch them); "
                "its writer updated existing rows instead"
            )
        why = f" ({fresh.why})" if fresh.why else ""
        if not p.inserts:
            return (
                f"probe traffic on {p.table}: no INSERT, since no key was left for a new "
                f"row{why}; its writer updated existing rows instead"
            )
        return (
            f"probe traffic on {p.table}: {len(p.inserts):,} INSERTs, then no key was left "
            f"for a new row{why}; its writer updated existing rows from "
            f"{p.no_key_since or 0.0:.1f} s on"
        )

    def notes(self, step_at: Callable[[float], str]) -> list[str]:
        """What the probe traffic could not do as asked: tables whose keys left the writer
        no row to insert, and operations the server refused (`step_at` says when a time
        was: "during step 3")."""
        out: list[str] = []
        with self._lock:
            for p in self.probes + self.feeders:
                fresh = self.fresh.get(p.table)
                if p.kind == "write" and fresh is not None and p.no_key_since is not None:
                    out.append(self._no_key_note(p, fresh))
                for (verb, state), (n, first, at) in sorted(p.failures.items()):
                    out.append(
                        f"probe traffic on {p.table}: {verb} failed {n:,} time(s) with "
                        f"SQLSTATE {state} ({first}), the first {step_at(at)}; the probes "
                        "write as the application did before the migration"
                    )
        return out

    def stop(self) -> None:
        self._stop.set()
        for conn in self._conns:
            with contextlib.suppress(psycopg.Error, AttributeError):
                conn.cancel_safe(timeout=2)
        for th in self._threads:
            if th.ident is not None:  # started: stop runs after a failed or interrupted start
                th.join(timeout=5)
        for conn in self._conns:
            conn.close()
