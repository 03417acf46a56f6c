import psycopg
import pytest
from prometheus_client import CollectorRegistry

from pgwarden.guard import (
    BreakerPolicy,
    CircuitOpen,
    Guard,
    GuardedPool,
    PoolLimits,
    SessionTimeouts,
)
from pgwarden.guard.metrics import instrument
from tests.guard.conftest import Locker


def test_metrics_follow_the_guard(invoices_db):
    registry = CollectorRegistry()
    guard = Guard(
        "m", breaker=BreakerPolicy(min_calls=3, failure_rate=0.5, open_ms=60_000), observers=[]
    )
    with GuardedPool(
        invoices_db,
        guard,
        limits=PoolLimits(max_size=3, min_size=0),
        timeouts=SessionTimeouts(lock_timeout_ms=100),
    ) as pool:
        instrument(guard, pools=[pool], registry=registry)
        with pool.connection() as c:
            c.execute("SELECT 1")
            assert registry.get_sample_value("pgwarden_guard_in_flight", {"guard": "m"}) == 1
            assert registry.get_sample_value("pgwarden_guard_pool_in_use", {"guard": "m"}) == 1
        with Locker(invoices_db):
            for _ in range(2):
                with pytest.raises(psycopg.errors.LockNotAvailable), pool.connection() as c:
                    c.execute("SELECT * FROM invoices")
        with pytest.raises(CircuitOpen), pool.connection():
            pass
    get = registry.get_sample_value
    assert get("pgwarden_guard_breaker_state", {"guard": "m"}) == 2
    assert get("pgwarden_guard_shed_total", {"guard": "m", "reason": "circuit_open"}) == 1
    assert get("pgwarden_guard_finished_total", {"guard": "m", "outcome": "failure"}) == 2
    assert get("pgwarden_guard_finished_total", {"guard": "m", "outcome": "success"}) == 1
    assert get("pgwarden_guard_breaker_transitions_total", {"guard": "m", "to_state": "open"}) == 1
    assert get("pgwarden_guard_queue_wait_seconds_count", {"guard": "m"}) == 3
    assert (get("pgwarden_guard_limit", {"guard": "m"}) or 0) >= 2
    assert get("pgwarden_guard_pool_max_size", {"guard": "m"}) == 3
    assert get("pgwarden_guard_in_flight", {"guard": "m"}) == 0


def test_state_changes_are_logged(invoices_db, caplog):
    from pgwarden.guard import LogObserver

    guard = Guard(
        "logged",
        breaker=BreakerPolicy(min_calls=1, failure_rate=0.5, open_ms=60_000),
        observers=[LogObserver()],
    )
    timeouts = SessionTimeouts(lock_timeout_ms=100)
    with (
        caplog.at_level("INFO", logger="pgwarden.guard"),
        GuardedPool(invoices_db, guard, timeouts=timeouts) as pool,
        Locker(invoices_db),
        pytest.raises(psycopg.errors.LockNotAvailable),
        pool.connection() as c,
    ):
        c.execute("SELECT * FROM invoices")
    events = [r for r in caplog.records if getattr(r, "event", None) == "pgwarden.guard.breaker"]
    assert [(r.from_state, r.to_state) for r in events] == [("closed", "open")]
    assert events[0].levelname == "WARNING"
