import threading

import psycopg
import pytest

from pgwarden.guard import (
    AimdPolicy,
    BreakerPolicy,
    BreakerState,
    CircuitOpen,
    DatabaseUnavailable,
    Guard,
    GuardedPool,
    LimitPolicy,
    PoolLimits,
    SessionTimeouts,
)
from tests.guard.conftest import Locker, backends, lock_waiters
from tests.guard.servers import wait_until

APP = "guard-pool-test"


def make_guard(**breaker) -> Guard:
    policy = BreakerPolicy(
        **{"min_calls": 3, "failure_rate": 0.5, "open_ms": 200, "half_open_probes": 1, **breaker}
    )
    limit = LimitPolicy(
        algorithm=AimdPolicy(initial_limit=4, min_limit=2, max_limit=4),
        queue_size=4,
        queue_timeout_ms=1000,
    )
    return Guard("t", breaker=policy, limit=limit, observers=[])


def make_pool(dsn: str, guard: Guard, **limits) -> GuardedPool:
    return GuardedPool(
        f"{dsn} application_name={APP}",
        guard,
        limits=PoolLimits(**{"max_size": 2, "min_size": 0, "acquire_timeout_ms": 200, **limits}),
        timeouts=SessionTimeouts(statement_timeout_ms=3000, lock_timeout_ms=100),
    )


def test_session_timeouts_are_set_on_every_connection(invoices_db):
    with make_pool(invoices_db, make_guard()) as pool, pool.connection() as c:
        assert c.execute("SHOW lock_timeout").fetchone() == ("100ms",)
        assert c.execute("SHOW statement_timeout").fetchone() == ("3s",)
        assert c.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("10s",)


def test_acquire_fails_fast_and_connections_never_exceed_the_maximum(invoices_db, admin):
    guard = make_guard(min_calls=100)
    with make_pool(invoices_db, guard) as pool:
        started = threading.Barrier(3)
        release = threading.Event()

        def hold() -> None:
            # Outside the guard (the limit is capped at the pool's size, so guarded work
            # alone never waits for a connection): e.g. connections being re-established.
            with pool.pool.connection() as c:
                c.execute("SELECT 1")
                started.wait(10)
                release.wait(20)

        threads = [threading.Thread(target=hold) for _ in range(2)]
        for t in threads:
            t.start()
        started.wait(10)
        with pytest.raises(DatabaseUnavailable), pool.connection():
            pass
        assert backends(admin, APP) <= 2
        assert pool.stats().in_use == 2
        release.set()
        for t in threads:
            t.join(10)
        assert guard.stats().shed_total == {"database": 1}
        assert guard.stats().in_flight == 0


def test_lock_opens_the_breaker_then_it_recovers_by_itself(invoices_db, admin):
    guard = make_guard()
    with make_pool(invoices_db, guard) as pool:
        with pool.connection() as c:
            assert c.execute("SELECT count(*) FROM invoices").fetchone() == (100,)
        failures = 0
        with Locker(invoices_db):
            while guard.breaker.state is BreakerState.CLOSED:
                with pytest.raises(psycopg.errors.LockNotAvailable), pool.connection() as c:
                    c.execute("SELECT count(*) FROM invoices")
                failures += 1
                assert failures < 50
            assert guard.stats().breaker_state is BreakerState.OPEN
            assert guard.stats().limit < 4  # AIMD backed off on the failures
            # Open: refused at once, nothing reaches the database.
            with pytest.raises(CircuitOpen), pool.connection():
                pass
            assert lock_waiters(admin, APP) == 0

        # Lock gone: after open_ms one probe succeeds and closes the circuit.
        def probe() -> bool:
            try:
                with pool.connection() as c:
                    c.execute("SELECT count(*) FROM invoices")
            except CircuitOpen:
                return False
            return True

        wait_until(probe, what="a successful probe")
        stats = guard.stats()
        assert stats.breaker_state is BreakerState.CLOSED
        assert stats.in_flight == 0
        assert stats.outcome_total["failure"] == failures
        assert stats.shed_total["circuit_open"] >= 1


def test_handled_database_errors_still_count(invoices_db):
    guard = make_guard(min_calls=2, failure_rate=1.0)
    with make_pool(invoices_db, guard) as pool, Locker(invoices_db):
        for _ in range(2):
            with guard.scope():
                try:
                    with pool.connection() as c:
                        c.execute("SELECT * FROM invoices")
                except psycopg.errors.LockNotAvailable:
                    pass  # the application swallows it
        assert guard.breaker.state is BreakerState.OPEN
