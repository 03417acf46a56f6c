"""`CircuitOpen` says why the circuit is open: the last failure's kind (by SQLSTATE),
how many of how many calls failed, and when the breaker probes the database again;
never the conninfo or its password. Real failures on a real server: a lock held by a
migration (lock_timeout) and a statement_timeout. The log line of the opening says the
same."""

from __future__ import annotations

import socket

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.guard import (
    BreakerPolicy,
    BreakerState,
    CircuitOpen,
    DatabaseUnavailable,
    Guard,
    GuardedPool,
    LimitPolicy,
    LogObserver,
    PoolLimits,
    SessionTimeouts,
)
from tests.guard.conftest import Locker
from tests.guard.servers import wait_until

SECRET = "s3cret-pw-never-shown"


def _guard(**breaker: object) -> Guard:
    return Guard(
        "orders-db",
        breaker=BreakerPolicy(**{"min_calls": 10, "open_ms": 30_000, **breaker}),  # type: ignore[arg-type]
        limit=LimitPolicy(queue_size=10, queue_timeout_ms=30_000),
        observers=[],
    )


def _pool(dsn: str, guard: Guard, **timeouts: int | None) -> GuardedPool:
    # a password in the conninfo (trust auth ignores it): it must never reach the message
    conninfo = make_conninfo(dsn, password=SECRET, application_name="guard-why-test")
    return GuardedPool(
        conninfo,
        guard,
        limits=PoolLimits(max_size=2, min_size=0, acquire_timeout_ms=30_000),
        timeouts=SessionTimeouts(**{"statement_timeout_ms": 60_000, **timeouts}),
    )


def _query(pool: GuardedPool, sql: str = "SELECT count(*) FROM invoices") -> object:
    with pool.connection() as c:
        return c.execute(sql).fetchone()


def _no_conninfo(text: str, dsn: str) -> None:
    assert SECRET not in text
    parts = conninfo_to_dict(dsn)
    assert f"port={parts.get('port')}" not in text and dsn not in text


def test_circuit_opened_by_lock_timeouts_names_them(invoices_db: str) -> None:
    guard = _guard()
    with _pool(invoices_db, guard, lock_timeout_ms=50) as pool:
        for _ in range(3):
            assert _query(pool) == (100,)
        with Locker(invoices_db):
            for _ in range(5):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    _query(pool)
            assert guard.breaker.state is BreakerState.OPEN
            with pytest.raises(CircuitOpen) as info:
                _query(pool)
    text = str(info.value)
    assert info.value.message in text  # str() is the message (and the hint)
    assert "'orders-db' is open" in text
    assert "5 of 8 calls in the last 5 s failed, the last 5 in a row" in text
    assert "lock timeout (SQLSTATE 55P03 LockNotAvailable)" in text
    assert "probes the database again in " in text
    _no_conninfo(text + (info.value.hint or ""), invoices_db)


def test_circuit_opened_by_statement_timeouts_names_them(invoices_db: str) -> None:
    guard = _guard(consecutive_failures=3)
    with _pool(invoices_db, guard, statement_timeout_ms=20) as pool:
        for _ in range(3):
            with pytest.raises(psycopg.errors.QueryCanceled):
                _query(pool, "SELECT pg_sleep(5)")
        with pytest.raises(CircuitOpen) as info:
            _query(pool)
    text = str(info.value)
    assert "3 of 3 calls in the last 5 s failed, the last 3 in a row" in text
    assert "statement timeout (SQLSTATE 57014 QueryCanceled)" in text
    _no_conninfo(text, invoices_db)


def test_a_failed_probe_is_counted_and_named(invoices_db: str) -> None:
    guard = _guard(open_ms=50, max_open_ms=60_000, probe_lock_timeout_ms=50)
    with _pool(invoices_db, guard, lock_timeout_ms=50) as pool, Locker(invoices_db):
        for _ in range(5):
            with pytest.raises(psycopg.errors.LockNotAvailable):
                _query(pool)
        wait_until(lambda: guard.breaker.state is BreakerState.HALF_OPEN, what="half-open")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            _query(pool)  # the probe
        with pytest.raises(CircuitOpen) as info:
            _query(pool)
    text = str(info.value)
    assert "5 of 5 calls in the last 5 s failed, the last 5 in a row; then 1 probe failed" in text
    assert "lock timeout (SQLSTATE 55P03 LockNotAvailable)" in text


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_circuit_opened_by_a_server_that_is_down_names_the_connect_failure() -> None:
    port = _closed_port()
    guard = _guard()
    conninfo = f"host=127.0.0.1 port={port} dbname=shop user=app password={SECRET}"
    limits = PoolLimits(max_size=2, min_size=0, acquire_timeout_ms=100)
    with GuardedPool(conninfo, guard, limits=limits) as pool:
        for _ in range(5):
            with pytest.raises(DatabaseUnavailable):
                _query(pool)
        with pytest.raises(CircuitOpen) as info:
            _query(pool)
    text = str(info.value)
    assert "5 of 5 calls in the last 5 s failed, the last 5 in a row" in text
    assert "last failure: no pooled connection in time (PoolTimeout); the pool's last " in text
    assert "connection attempt failed: connection failure (no SQLSTATE, OperationalError): " in text
    assert "check that the server is running and reachable from here" in text
    assert SECRET not in text and str(port) not in text and "127.0.0.1" not in text


def test_circuit_opened_by_a_missing_database_names_it(invoices_db: str) -> None:
    guard = _guard(consecutive_failures=3)
    conninfo = make_conninfo(invoices_db, dbname="no_such_db", password=SECRET)
    limits = PoolLimits(max_size=2, min_size=0, acquire_timeout_ms=100)
    with GuardedPool(conninfo, guard, limits=limits) as pool:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable):
                _query(pool)
        with pytest.raises(CircuitOpen) as info:
            _query(pool)
    text = str(info.value)
    assert "attempt failed: connection failure (no SQLSTATE, OperationalError): check the " in text
    assert "database name in the pool's conninfo, or create the database first" in text
    assert SECRET not in text and "no_such_db" not in text


def test_the_log_line_of_the_opening_says_why(
    invoices_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning LogObserver writes as the breaker opens gives CircuitOpen's reason, in
    the same words (and as `extra` field `why`), never a conninfo value."""
    guard = Guard(
        "orders-db",
        breaker=BreakerPolicy(min_calls=10, consecutive_failures=3, open_ms=30_000),
        observers=[LogObserver()],
    )
    with (
        caplog.at_level("INFO", logger="pgwarden.guard"),
        _pool(invoices_db, guard, lock_timeout_ms=50) as pool,
        Locker(invoices_db),
    ):
        for _ in range(3):
            with pytest.raises(psycopg.errors.LockNotAvailable):
                _query(pool)
        with pytest.raises(CircuitOpen) as info:
            _query(pool)
    opened = [r for r in caplog.records if getattr(r, "to_state", None) == "open"]
    assert len(opened) == 1 and opened[0].levelname == "WARNING"
    line = opened[0].getMessage()
    why = "3 of 3 calls in the last 5 s failed, the last 3 in a row; last failure: lock "
    why += "timeout (SQLSTATE 55P03 LockNotAvailable)"
    assert line.startswith("guard orders-db: circuit closed -> open (failure rate 1.00 over 3 ")
    assert line.endswith(f": {why}"), line
    assert f"is open: {why}; " in str(info.value)  # the same words as the refusal
    assert getattr(opened[0], "why", None) == why
    _no_conninfo(line, invoices_db)


def test_the_log_line_of_a_circuit_opened_by_a_server_that_is_down_names_no_conninfo(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _closed_port()
    guard = Guard(
        "orders-db", breaker=BreakerPolicy(consecutive_failures=2), observers=[LogObserver()]
    )
    conninfo = f"host=127.0.0.1 port={port} dbname=shop user=app password={SECRET}"
    limits = PoolLimits(max_size=2, min_size=0, acquire_timeout_ms=100)
    with (
        caplog.at_level("WARNING", logger="pgwarden.guard"),
        GuardedPool(conninfo, guard, limits=limits) as pool,
    ):
        for _ in range(2):
            with pytest.raises(DatabaseUnavailable):
                _query(pool)
    [opened] = [r for r in caplog.records if getattr(r, "to_state", None) == "open"]
    line = opened.getMessage()
    assert "; last failure: no pooled connection in time (PoolTimeout); the pool's last " in line
    assert "check that the server is running and reachable from here" in line
    assert SECRET not in line and str(port) not in line and "127.0.0.1" not in line
