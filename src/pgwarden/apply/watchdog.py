"""Watchdog: a second connection that cancels our statement when traffic queues behind it.

It samples every `interval_ms` which sessions wait on our backend
(`pg_blocking_pids`). When more than `max_blocked_sessions` have waited for
longer than `max_block_ms` -- whether we are still waiting for our lock or
already hold it -- it cancels our statement with `pg_cancel_backend` and
records who was blocked (their queries as fingerprints, see `redact`, unless
the policy logs them whole). A user cancel (Ctrl-C, `pgwarden cancel`) goes
through the same door.

Its session is named after the run (`watchdog_name`) and queries every tick,
so its `state_change` in pg_stat_activity is the run's heartbeat: `status`
tells a live client from a dead or cut-off one by it.

It is also the run's read timeout. A statement legitimately runs for hours
with nothing on its connection, so silence there proves nothing; but a tick
unanswered for `unreachable_s` (setting `watchdog.unreachable_s`, default 30 s)
means the server or the path to it is gone (a black-holed link answers nothing
and reports no error). Then the guarded
connections are shut down, so a read blocked on them fails at once instead of
waiting for ever: no step runs unwatched.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql

from pgwarden.apply.events import Blocker
from pgwarden.apply.redact import redact_blocker
from pgwarden.pg.connect import connect
from pgwarden.settings import UNREACHABLE_S
from pgwarden.threads import Background

__all__ = ["CancelReason", "Watch", "Watchdog", "WatchdogPolicy", "watchdog_name"]

CancelReason = Literal["blocking-while-waiting", "blocking-while-holding", "user"]


def watchdog_name(run_id: str | None) -> str:
    """The application_name of a run's watchdog session."""
    return "pgwarden-watchdog" if run_id is None else f"pgwarden-watchdog {run_id}"


@dataclass(frozen=True, slots=True)
class WatchdogPolicy:
    """When the watchdog cancels our statement."""

    max_blocked_sessions: int = 2
    max_block_ms: int = 100
    interval_ms: int = 50
    log_blocker_queries: bool = False  # store other sessions' queries whole, not fingerprinted
    unreachable_s: float = UNREACHABLE_S  # no tick answered this long: cut the guarded conns

    def __post_init__(self) -> None:
        if not 0 < self.interval_ms <= 100:
            raise ValueError("interval_ms must be within (0, 100]")
        if self.max_blocked_sessions < 0 or self.max_block_ms < 0:
            raise ValueError("watchdog limits must not be negative")


@dataclass(slots=True)
class Watch:
    """What the watchdog saw during one attempt."""

    backend_pid: int
    cancelled: CancelReason | None = None
    blocked: list[Blocker] = field(default_factory=list)  # sessions we blocked, at the cancel
    waited_on: list[Blocker] = field(default_factory=list)  # who we waited for
    peak_blocked: int = 0
    samples: int = 0
    # Told the sessions our backend has waited for WAIT_ANNOUNCE_S or longer (each once):
    # a concurrent index build may wait minutes for an old transaction, silently otherwise.
    on_wait: Callable[[list[Blocker]], None] | None = None
    waiting_since: float | None = None
    announced: set[int] = field(default_factory=set)


WAIT_ANNOUNCE_S = 2.0


_SAMPLE = sql.SQL(
    """
    SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
           extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''),
           a.wait_event_type, a.pid = {pid} AS ours,
           (a.wait_event_type = 'Lock' AND {pid} = ANY (pg_blocking_pids(a.pid))) AS blocked,
           a.pid = ANY (pg_blocking_pids({pid})) AS waited_on
      FROM pg_stat_activity a
     WHERE a.pid = {pid} OR a.wait_event_type = 'Lock'
        OR a.pid = ANY (pg_blocking_pids({pid}))
    """
)


class Watchdog:
    """Runs a sampling thread on its own connection; `watch()` guards one attempt."""

    def __init__(
        self,
        dsn: str,
        policy: WatchdogPolicy,
        cancel: threading.Event,
        cancel_requested: Callable[[psycopg.Connection[tuple[object, ...]]], bool] | None = None,
        run_id: str | None = None,
        guarded: Sequence[psycopg.Connection[tuple[object, ...]]] = (),
    ) -> None:
        self.dsn = dsn
        self.name = watchdog_name(run_id)
        self._guarded = list(guarded)
        self._last_answer = time.monotonic()
        self.unreachable = False  # the server stopped answering; the guarded conns were cut
        self.policy = policy
        self.cancel = cancel
        self._cancel_requested = cancel_requested
        self._lock = threading.Lock()
        self._watch: Watch | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._over_since: float | None = None

    def start(self) -> None:
        self._conn = connect(self.dsn, application_name=self.name)
        self._thread = Background(target=self._loop, name="pgwarden-watchdog", daemon=True)
        self._last_answer = time.monotonic()
        self._thread.start()
        Background(target=self._monitor, name="pgwarden-watchdog-timer", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()

    def __enter__(self) -> Watchdog:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def watch(
        self, backend_pid: int, on_wait: Callable[[list[Blocker]], None] | None = None
    ) -> Iterator[Watch]:
        """Guard one attempt of our backend; no cancel is sent after this exits. `on_wait`
        is told (from the watchdog's thread) the sessions the backend has waited for
        `WAIT_ANNOUNCE_S` or longer, each once."""
        w = Watch(backend_pid, on_wait=on_wait)
        with self._lock:
            self._watch = w
            self._over_since = None
        try:
            yield w
        finally:
            with self._lock:
                self._watch = None

    # -- the read timeout --------------------------------------------------------------

    def _monitor(self) -> None:
        while not self._stop.wait(0.5):
            if self.unreachable or time.monotonic() - self._last_answer < self.policy.unreachable_s:
                continue
            self.unreachable = True
            for conn in [self._conn, *self._guarded]:
                if conn is not None:
                    _shut_down(conn)

    # -- the sampling thread ---------------------------------------------------------

    def _loop(self) -> None:
        interval = self.policy.interval_ms / 1000
        while not self._stop.wait(interval):
            try:
                self._tick()
            except psycopg.Error:
                conn = self._conn
                if conn is not None and not conn.broken and not conn.closed:
                    self._last_answer = time.monotonic()  # an error from the server: it answered
                self._reconnect()

    def _reconnect(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
        with suppress(Exception):
            self._conn = connect(self.dsn, application_name=self.name)

    def _long_waits(self, w: Watch, waited_on: list[Blocker]) -> None:
        """Tell `w.on_wait` the sessions waited for since WAIT_ANNOUNCE_S, once each."""
        if w.on_wait is None or not waited_on:
            w.waiting_since = None
            return
        now = time.monotonic()
        if w.waiting_since is None:
            w.waiting_since = now
        new = [b for b in waited_on if b.pid not in w.announced]
        if new and now - w.waiting_since >= WAIT_ANNOUNCE_S:
            w.announced.update(b.pid for b in new)
            w.on_wait(self._redacted(new))

    def _tick(self) -> None:
        conn = self._conn
        if conn is None:
            self._reconnect()
            return
        poll = self._cancel_requested
        if poll is None or self.cancel.is_set():
            conn.execute(sql.SQL("SELECT 1"))  # the heartbeat: one query per tick
        elif poll(conn):
            self.cancel.set()
        self._last_answer = time.monotonic()
        with self._lock:
            w = self._watch
            if w is None:
                return
            if self.cancel.is_set():
                self._fire(conn, w, "user", [])
                return
            rows = conn.execute(_SAMPLE.format(pid=sql.Literal(w.backend_pid))).fetchall()
            w.samples += 1
            ours_waiting = False
            blocked: list[Blocker] = []
            waited_on: list[Blocker] = []
            for pid, app, state, age, query, wait, ours, is_blocked, is_waited_on in rows:
                b = Blocker(
                    pid=int(str(pid)),
                    application=str(app),
                    state=str(state),
                    xact_age_s=None if age is None else float(str(age)),
                    query=str(query),
                    wait_event_type=None if wait is None else str(wait),
                )
                if ours:
                    ours_waiting = wait == "Lock"
                elif is_blocked:
                    blocked.append(b)
                elif is_waited_on:
                    waited_on.append(b)
            if waited_on and not w.waited_on:
                w.waited_on = self._redacted(waited_on)
            self._long_waits(w, waited_on if ours_waiting else [])
            w.peak_blocked = max(w.peak_blocked, len(blocked))
            if len(blocked) <= self.policy.max_blocked_sessions:
                self._over_since = None
                return
            now = time.monotonic()
            if self._over_since is None:
                self._over_since = now
            if (now - self._over_since) * 1000 >= self.policy.max_block_ms:
                reason: CancelReason = (
                    "blocking-while-waiting" if ours_waiting else "blocking-while-holding"
                )
                self._fire(conn, w, reason, blocked)

    def _fire(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        w: Watch,
        reason: CancelReason,
        blocked: list[Blocker],
    ) -> None:
        if w.cancelled is None:
            w.cancelled = reason
            w.blocked = self._redacted(blocked)
        conn.execute(sql.SQL("SELECT pg_cancel_backend({})").format(sql.Literal(w.backend_pid)))

    def _redacted(self, blockers: list[Blocker]) -> list[Blocker]:
        full = self.policy.log_blocker_queries
        return [redact_blocker(b, full_query=full) for b in blockers]


def _shut_down(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Shut the connection's socket down: a read blocked on it returns at once (an error)."""
    with suppress(Exception):
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
