"""Poll `pg_locks` from a second connection every few milliseconds.

The sampler watches the migration's backend (which relation locks it holds or
waits for) and the probe backends (whether they wait for a lock). Samples are
merged into intervals as they arrive, so memory stays small on long steps.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import psycopg

from pgwarden.analysis.effects import LockMode
from pgwarden.rehearse.model import HeldLock
from pgwarden.threads import Background

__all__ = ["LockSampler"]

_LOCKS = """
SELECT l.pid, l.relation::int8, l.mode, l.granted FROM pg_locks l
WHERE l.locktype = 'relation' AND l.pid = ANY(%s) AND l.relation >= 16384
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_NAMES = "SELECT c.oid::int8, c.oid::regclass::text FROM pg_class c WHERE c.oid >= 16384"


def _title(pg_mode: str) -> str:
    try:
        return LockMode.from_pg_name(pg_mode).title
    except ValueError:
        return pg_mode


@dataclass(slots=True)
class _Open:
    start: float
    last: float


@dataclass(slots=True)
class _State:
    held: dict[tuple[str, str, bool], _Open] = field(default_factory=dict)
    closed: list[HeldLock] = field(default_factory=list)
    waits: dict[int, list[tuple[float, float]]] = field(default_factory=dict)


class LockSampler:
    """A background thread sampling `pg_locks` every `period_s` (≤ 10 ms)."""

    def __init__(self, dsn: str, t0: float, *, period_s: float = 0.005) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True, application_name="pgwarden-sampler")
        self._t0 = t0
        self._period = period_s
        self._runner: int | None = None
        self._probes: list[int] = []
        self._names: dict[int, str] = {}
        self._state = _State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = Background(target=self._loop, name="pgwarden-sampler", daemon=True)
        self.samples = 0
        self.max_gap_s = 0.0

    def watch(self, runner_pid: int, probe_pids: list[int]) -> None:
        with self._lock:
            self._runner = runner_pid
            self._probes = list(probe_pids)

    def start(self) -> None:
        self._refresh_names()
        self._thread.start()

    def _refresh_names(self) -> None:
        self._names = {int(str(r[0])): str(r[1]) for r in self._conn.execute(_NAMES)}

    def _name(self, oid: int) -> str:
        if oid not in self._names:
            self._refresh_names()
        return self._names.get(oid, str(oid))

    def _loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            with self._lock:
                pids = ([self._runner] if self._runner else []) + self._probes
            try:
                rows = self._conn.execute(_LOCKS, (pids,)).fetchall()
            except psycopg.Error:
                if self._stop.is_set() or self._conn.closed:
                    return
                continue
            now = time.perf_counter()
            self.max_gap_s = max(self.max_gap_s, now - last)
            last = now
            self.samples += 1
            self._record(rows, now - self._t0)
            self._stop.wait(self._period)

    def _record(self, rows: list[tuple[object, ...]], t: float) -> None:
        seen: set[tuple[str, str, bool]] = set()
        waiting: set[int] = set()
        for pid, rel, mode, granted in rows:
            pid_i = int(str(pid))
            if pid_i == self._runner:
                seen.add((self._name(int(str(rel))), str(mode), bool(granted)))
            elif not granted:
                waiting.add(pid_i)
        with self._lock:
            st = self._state
            for key in seen:
                cur = st.held.get(key)
                if cur is None:
                    st.held[key] = _Open(t, t)
                else:
                    cur.last = t
            for key in [k for k in st.held if k not in seen]:
                self._close(key, t)
            for pid_i in waiting:
                spans = st.waits.setdefault(pid_i, [])
                if spans and t - spans[-1][1] <= 3 * self._period + 0.02:
                    spans[-1] = (spans[-1][0], t)
                else:
                    spans.append((t, t))

    def _close(self, key: tuple[str, str, bool], t: float) -> None:
        cur = self._state.held.pop(key)
        rel, mode, granted = key
        self._state.closed.append(HeldLock(rel, _title(mode), cur.start, t, granted))

    def waited_since(self, pid: int, t: float) -> bool:
        """Whether `pid` was seen waiting for a lock at or after `t`."""
        with self._lock:
            return any(end >= t for _, end in self._state.waits.get(pid, []))

    def wait_spans(self, pid: int) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._state.waits.get(pid, []))

    def held_between(self, start: float, end: float) -> list[HeldLock]:
        """Runner locks (granted or waited for) overlapping [start, end], clipped."""
        with self._lock:
            spans = list(self._state.closed) + [
                HeldLock(k[0], _title(k[1]), o.start, o.last, k[2])
                for k, o in self._state.held.items()
            ]
        out = []
        for h in spans:
            if h.end_s >= start and h.start_s <= end:
                clipped = (max(h.start_s, start), min(h.end_s, end))
                out.append(HeldLock(h.relation, h.mode, *clipped, h.granted))
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            now = time.perf_counter() - self._t0
            for key in list(self._state.held):
                self._close(key, now)
            self._name_oids()
        self._conn.close()

    def _name_oids(self) -> None:
        """Relations seen only by OID (created in the migration's open transaction) by name,
        now that it ended; those gone (rolled back, or a rewrite's transient copy) left out."""
        if not any(h.relation.isdigit() for h in self._state.closed):
            return
        try:
            self._refresh_names()
        except psycopg.Error:
            return
        names = {str(oid): name for oid, name in self._names.items()}
        self._state.closed = [
            replace(h, relation=names[h.relation]) if h.relation in names else h
            for h in self._state.closed
            if not h.relation.isdigit() or h.relation in names
        ]
