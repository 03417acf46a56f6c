"""Helpers for apply tests: a small shop schema, plans from SQL text, an event recorder."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.apply.events import Event
from pgwarden.apply.identity import stamp_database
from pgwarden.demo import create_sample_schema
from pgwarden.plan import Plan


@pytest.fixture
def shop(db: str) -> str:
    """A fresh database with payment_accounts, invoices (2,000 rows) and settings,
    adopted as the unprotected environment staging (as `apply --restamp` would)."""
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2_000, accounts_rows=100)
        stamp_database(c, "staging", protected=False, by="tests")
    return db


def write_sql(tmp_path: Path, text: str, name: str = "001.sql") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def plan_of(path: Path, *, file_transaction: bool = True) -> Plan:
    return commands.load_plan([path], file_transaction=file_transaction)


class Recorder:
    """Collects events; `wait_for(kind)` blocks until one arrives (for orderings)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self.hooks: list[Callable[[Event], None]] = []

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
        for hook in self.hooks:
            hook(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def wait_for(self, kind: str, timeout_s: float = 60.0) -> Event:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(e.kind == kind for e in self.events), timeout_s)
        assert ok, f"no {kind} event within {timeout_s} s; got {self.kinds()}"
        return self.of(kind)[0]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def scalar(dsn: str, query: str) -> object:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(query.encode()).fetchone()
        return None if row is None else row[0]


@pytest.fixture
def holder(shop: str) -> Iterator[Callable[[str], psycopg.Connection[tuple[object, ...]]]]:
    """Open a transaction that runs `sql` and keeps its locks until the test commits it."""
    opened: list[psycopg.Connection[tuple[object, ...]]] = []

    def hold(sql: str) -> psycopg.Connection[tuple[object, ...]]:
        c = psycopg.connect(shop, application_name="lock-holder")
        c.execute(sql.encode())
        opened.append(c)
        return c

    yield hold
    for c in opened:
        c.close()


class Readers:
    """Threads that keep reading `invoices`, like API traffic; they queue behind DDL."""

    def __init__(self, dsn: str, n: int) -> None:
        self.dsn = dsn
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]
        self.pids: set[int] = set()

    def _loop(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, application_name="reader") as c:
            self.pids.add(c.info.backend_pid)
            c.execute("SET statement_timeout = '60s'")
            while not self.stop.is_set():
                with contextlib.suppress(psycopg.Error):
                    c.execute("SELECT count(*) FROM invoices WHERE id < 10")
                self.stop.wait(0.01)

    def __enter__(self) -> Readers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def wait_until(dsn: str, query: str, timeout_s: float = 60.0) -> None:
    """Poll `query` (a boolean) until true; fails after `timeout_s` (only against hangs)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if scalar(dsn, query):
                return
        except psycopg.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


CIC_WAITING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX CONCURRENTLY%')"
)
INVALID = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"


def cli(*args: str, **kw: object) -> list[str]:
    """argv running pgwarden's CLI with this interpreter."""
    import sys

    return [sys.executable, "-m", "pgwarden", *args]


def apply_in_thread(
    dsn: str, path: Path, recorder: Recorder, *, reconnect_s: float = 0.0
) -> tuple[threading.Thread, list[object]]:
    """Run apply_plan in a thread (lock timeout long enough to cancel during the wait;
    no automatic reconnect unless `reconnect_s`)."""
    results: list[object] = []
    t = threading.Thread(
        target=lambda: results.append(
            apply_plan(
                plan_of(path, file_transaction=False),
                database_url=dsn,
                observer=recorder,
                policy=GuardPolicy(env="staging"),
                options=RunOptions(limits=Limits(lock_timeout_ms=120_000, reconnect_s=reconnect_s)),
            )
        )
    )
    t.start()
    return t, results
