"""The guard sheds within about a second of a lock (issue #12.13).

- a burst of consecutive failures opens the breaker even when its window is full of
  successes from before;
- half-open admits exactly one probe at a time, the others are shed at once;
- a probe waits only `probe_lock_timeout_ms` for locks, and the connection gets its normal
  `lock_timeout` back afterwards;
- a failed call is not progress: while nothing succeeds the limiter sheds arrivals at once
  (`stalled`) instead of letting them wait out the queue timeout, and opening the breaker
  sheds the work already queued.

States and counts only; the time bounds are hang guards.
"""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from pgwarden.guard import (
    AimdPolicy,
    AsyncGuardedPool,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    Guard,
    GuardedPool,
    Limiter,
    LimitPolicy,
    LimitReached,
    Outcome,
    PoolLimits,
    SessionTimeouts,
    Shed,
)
from pgwarden.guard.errors import GuardConfigError
from tests.guard.conftest import Locker, lock_waiters
from tests.guard.servers import wait_until

APP = "guard-fail-fast-test"
MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def __call__(self) -> int:
        return self.ns


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def run(breaker: CircuitBreaker, outcome: Outcome) -> None:
    breaker.record(breaker.acquire(), outcome)


def trip(breaker: CircuitBreaker) -> None:
    """Open the breaker with consecutive failures (admitted while closed)."""
    while breaker.state is BreakerState.CLOSED:
        run(breaker, Outcome.FAILURE)


# -- the breaker alone (fake clock) ---------------------------------------------------------


def test_a_burst_of_failures_opens_even_when_the_window_is_full_of_successes():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(window_ms=5_000, min_calls=10), clock=clock)
    for _ in range(250):  # 5 s of warm-up at 50 req/s, all in the window
        run(breaker, Outcome.SUCCESS)
        clock.ns += 20 * MS
    for _ in range(4):
        run(breaker, Outcome.FAILURE)
    assert state(breaker) is BreakerState.CLOSED
    run(breaker, Outcome.FAILURE)  # the fifth in a row
    assert state(breaker) is BreakerState.OPEN


def test_a_success_between_failures_resets_the_streak():
    breaker = CircuitBreaker(BreakerPolicy(min_calls=100, consecutive_failures=3), clock=Clock())
    for outcome in [Outcome.FAILURE] * 2 + [Outcome.SUCCESS] + [Outcome.FAILURE] * 2:
        run(breaker, outcome)
    run(breaker, Outcome.IGNORE)  # says nothing: neither resets nor extends the streak
    assert state(breaker) is BreakerState.CLOSED
    run(breaker, Outcome.FAILURE)
    assert state(breaker) is BreakerState.OPEN


def test_half_open_admits_exactly_one_probe_at_a_time():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(open_ms=1_000, half_open_probes=2), clock=clock)
    trip(breaker)
    clock.ns += 1_000 * MS
    first = breaker.acquire()
    assert first.probe
    for _ in range(20):
        with pytest.raises(CircuitOpen):
            breaker.acquire()
    breaker.record(first, Outcome.SUCCESS)
    assert state(breaker) is BreakerState.HALF_OPEN  # two successful probes close it
    second = breaker.acquire()
    assert second.probe
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    breaker.record(second, Outcome.SUCCESS)
    assert state(breaker) is BreakerState.CLOSED


def test_each_failed_probe_doubles_the_open_period_up_to_max_open_ms():
    clock = Clock()
    breaker = CircuitBreaker(
        BreakerPolicy(open_ms=1_000, max_open_ms=3_000, retry_after_jitter_s=0), clock=clock
    )
    trip(breaker)
    periods = []
    for _ in range(4):
        waited = 0
        while state(breaker) is BreakerState.OPEN:
            clock.ns += 100 * MS
            waited += 100
        periods.append(waited)
        run(breaker, Outcome.FAILURE)  # the probe fails: open again
    assert periods == [1_000, 2_000, 3_000, 3_000]
    clock.ns += 3_000 * MS
    run(breaker, Outcome.SUCCESS)  # the probe succeeds: closed, and the period starts over
    assert state(breaker) is BreakerState.CLOSED
    trip(breaker)
    clock.ns += 1_000 * MS
    assert state(breaker) is BreakerState.HALF_OPEN
    assert BreakerPolicy(open_ms=700).longest_open_ms == 1_400


def test_default_policy_needs_one_probe_and_sheds_with_a_short_probe_timeout():
    policy = BreakerPolicy()
    assert policy.half_open_probes == 1
    assert policy.consecutive_failures == 5
    assert policy.probe_lock_timeout_ms == 100
    with pytest.raises(GuardConfigError):
        BreakerPolicy(consecutive_failures=-1)
    with pytest.raises(GuardConfigError):
        BreakerPolicy(probe_lock_timeout_ms=0)
    with pytest.raises(GuardConfigError):
        BreakerPolicy(open_ms=1_000, max_open_ms=999)


# -- the limiter alone (fake clock) ---------------------------------------------------------


def test_failed_calls_are_not_progress_so_arrivals_are_shed_at_once():
    clock = Clock()
    lim = Limiter(
        LimitPolicy(
            algorithm=AimdPolicy(initial_limit=2, min_limit=2, max_limit=2),
            queue_size=5,
            queue_timeout_ms=1_000,
        ),
        clock=clock,
    )
    a, b = lim.acquire(), lim.acquire()
    clock.ns += 2_000 * MS
    a.release(Outcome.FAILURE)  # a lock timeout: the database is stuck, not progressing
    c = lim.acquire()  # the freed slot
    with pytest.raises(LimitReached) as info:
        lim.acquire()  # nothing succeeded for 2 s > the queue timeout: no point queueing
    assert info.value.reason == "stalled"
    b.release(Outcome.SUCCESS)
    d = lim.acquire()
    c.release(Outcome.SUCCESS)
    d.release(Outcome.SUCCESS)
    assert lim.inflight == 0


def test_opening_the_breaker_sheds_the_queued_work_at_once():
    guard = Guard(
        "t",
        breaker=BreakerPolicy(open_ms=60_000),
        limit=LimitPolicy(
            algorithm=AimdPolicy(initial_limit=1, min_limit=1, max_limit=1),
            queue_size=4,
            queue_timeout_ms=60_000,
        ),
        observers=[],
    )
    held = guard.enter()
    errors: list[Shed] = []

    def queued() -> None:
        try:
            guard.enter().finish()
        except Shed as exc:
            errors.append(exc)

    t = threading.Thread(target=queued)
    t.start()
    wait_until(lambda: guard.stats().queue_depth == 1, what="the waiter to queue")
    trip(guard.breaker)
    t.join(30)  # hang guard: the queue timeout is 60 s
    assert not t.is_alive()
    assert [e.reason for e in errors] == ["circuit_open"]
    assert guard.stats().queue_depth == 0
    held.finish()
    assert guard.stats().in_flight == 0


# -- on a real server ----------------------------------------------------------------------


def docs_guard(**breaker: object) -> Guard:
    """The breaker and limit of docs/guard.md's example."""
    return Guard(
        "t",
        breaker=BreakerPolicy(
            **{"min_calls": 10, "failure_rate": 0.5, "open_ms": 1_000, **breaker}  # type: ignore[arg-type]
        ),
        limit=LimitPolicy(queue_size=10, queue_timeout_ms=50),
        observers=[],
    )


def make_pool(dsn: str, guard: Guard, lock_timeout_ms: int | None = 500) -> GuardedPool:
    return GuardedPool(
        f"{dsn} application_name={APP}",
        guard,
        limits=PoolLimits(max_size=4, min_size=0, acquire_timeout_ms=500),
        timeouts=SessionTimeouts(statement_timeout_ms=60_000, lock_timeout_ms=lock_timeout_ms),
    )


def query(pool: GuardedPool) -> object:
    with pool.connection() as c:
        return c.execute("SELECT count(*) FROM invoices").fetchone()


def test_lock_after_a_busy_healthy_period_opens_after_five_failures(invoices_db):
    guard = docs_guard()
    with make_pool(invoices_db, guard) as pool:
        for _ in range(100):  # warm-up: the 5 s window holds 100 successes
            assert query(pool) == (100,)
        failures = 0
        with Locker(invoices_db):
            while guard.breaker.state is BreakerState.CLOSED:
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    query(pool)
                failures += 1
                assert failures <= 60  # hang guard (the rate alone needs 100)
            with pytest.raises(CircuitOpen):
                query(pool)
    assert failures == 5
    assert guard.breaker.window() == (105, 5)


def test_half_open_sends_one_probe_to_the_locked_table_and_sheds_the_rest(invoices_db, admin):
    guard = docs_guard(open_ms=100, probe_lock_timeout_ms=60_000)
    with make_pool(invoices_db, guard) as pool:
        assert query(pool) == (100,)
        with Locker(invoices_db):
            trip(guard.breaker)
            wait_until(lambda: guard.breaker.state is BreakerState.HALF_OPEN, what="half-open")
            results: list[object] = []
            probe = threading.Thread(target=lambda: results.append(query(pool)))
            probe.start()
            wait_until(lambda: lock_waiters(admin, APP) == 1, what="the probe to wait")
            for _ in range(20):
                with pytest.raises(CircuitOpen):
                    query(pool)
            assert lock_waiters(admin, APP) == 1
            assert guard.breaker.state is BreakerState.HALF_OPEN
        probe.join(30)
        assert results == [(100,)]
        assert state(guard.breaker) is BreakerState.CLOSED
        assert guard.stats().shed_total["circuit_open"] == 20


def test_a_probe_waits_only_the_probe_lock_timeout_then_gets_the_normal_one_back(invoices_db):
    # No lock_timeout for ordinary calls: only the probe's own can end its wait.
    guard = docs_guard(open_ms=100, probe_lock_timeout_ms=100)
    with make_pool(invoices_db, guard, lock_timeout_ms=None) as pool:
        with pool.connection() as c:
            normal = c.execute("SHOW lock_timeout").fetchone()
        trip(guard.breaker)
        wait_until(lambda: guard.breaker.state is BreakerState.HALF_OPEN, what="half-open")
        with pool.connection() as c:
            assert c.execute("SHOW lock_timeout").fetchone() == ("100ms",)
        assert state(guard.breaker) is BreakerState.CLOSED
        with pool.connection() as c:
            assert c.execute("SHOW lock_timeout").fetchone() == normal
        with Locker(invoices_db):
            trip(guard.breaker)
            wait_until(lambda: guard.breaker.state is BreakerState.HALF_OPEN, what="half-open")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                query(pool)  # the statement timeout (60 s) would raise QueryCanceled
            assert state(guard.breaker) is BreakerState.OPEN
        # The probes' connections went back to the pool reset, not closed and replaced.
        stats = pool.pool.get_stats()
        assert stats.get("returns_bad", 0) == 0
        assert stats.get("connections_lost", 0) == 0


def test_an_async_probe_uses_the_probe_lock_timeout_too(invoices_db):
    guard = docs_guard(open_ms=100, probe_lock_timeout_ms=100)

    async def main() -> list[object]:
        seen: list[object] = []
        pool = AsyncGuardedPool(
            f"{invoices_db} application_name={APP}",
            guard,
            limits=PoolLimits(max_size=2, min_size=0),
            timeouts=SessionTimeouts(lock_timeout_ms=2_000),
        )
        async with pool:
            trip(guard.breaker)
            while guard.breaker.state is not BreakerState.HALF_OPEN:
                await asyncio.sleep(0.02)
            for _ in range(2):  # the probe, then an ordinary call on the same connection
                async with pool.connection() as c:
                    cur = await c.execute("SHOW lock_timeout")
                    seen.append(await cur.fetchone())
            stats = pool.pool.get_stats()  # the probe's connection was reset, not replaced
            seen.append(stats.get("returns_bad", 0) + stats.get("connections_lost", 0))
        return seen

    assert asyncio.run(main()) == [("100ms",), ("2s",), 0]


def test_the_limit_never_admits_more_work_than_the_pool_has_connections(invoices_db):
    # AimdPolicy's own maximum is 100: the pool's 2 connections must bound it, or work
    # admitted beyond them waits out the acquire timeout and trips the breaker.
    guard = Guard("t", limit=LimitPolicy(queue_size=0), observers=[])
    with GuardedPool(
        f"{invoices_db} application_name={APP}",
        guard,
        limits=PoolLimits(max_size=2, min_size=0),
    ) as pool:
        assert guard.limiter.limit == 2
        held = threading.Barrier(3)
        release = threading.Event()

        def hold() -> None:
            with pool.connection() as c:
                c.execute("SELECT 1")
                held.wait(30)
                release.wait(30)

        threads = [threading.Thread(target=hold) for _ in range(2)]
        for t in threads:
            t.start()
        held.wait(30)
        with pytest.raises(LimitReached), pool.connection():
            pass  # shed at once, not a DatabaseUnavailable after the acquire timeout
        release.set()
        for t in threads:
            t.join(30)
        for _ in range(50):  # busy and healthy: AIMD grows, but not past the pool
            query(pool)
        assert guard.limiter.limit <= 2
    assert guard.stats().shed_total == {"limit": 1}
