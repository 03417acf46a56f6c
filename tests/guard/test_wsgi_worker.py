import asyncio
import json

import httpx
import psycopg
import pytest

from pgwarden.guard import (
    AsyncGuardedPool,
    BreakerPolicy,
    BreakerState,
    CircuitOpen,
    Guard,
    GuardedPool,
    GuardWSGIMiddleware,
    LimitPolicy,
    PoolLimits,
    SessionTimeouts,
    current_scope,
    guarded,
)
from tests.guard.conftest import Locker
from tests.guard.servers import WsgiThread, wait_until

TIMEOUTS = SessionTimeouts(lock_timeout_ms=100)
LIMITS = PoolLimits(max_size=2, min_size=0)


def quick_breaker() -> BreakerPolicy:
    return BreakerPolicy(min_calls=3, failure_rate=0.5, open_ms=200, half_open_probes=1)


def test_wsgi_middleware_sheds_and_recovers(invoices_db):
    guard = Guard("wsgi", breaker=quick_breaker(), observers=[])
    pool = GuardedPool(invoices_db, guard, limits=LIMITS, timeouts=TIMEOUTS)

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/ping":
            start_response("200 OK", [("content-type", "text/plain")])
            return [b"pong"]
        with pool.connection() as c:
            row = c.execute("SELECT count(*) FROM invoices").fetchone()
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"count": row[0] if row else None}).encode()]

    wrapped = GuardWSGIMiddleware(app, guard, exempt_paths=["/ping"])
    with pool, WsgiThread(wrapped) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/invoices").json() == {"count": 100}
        with Locker(invoices_db):
            reasons = [c.get("/invoices").headers.get("x-pgwarden-shed") for _ in range(4)]
            assert c.get("/ping").text == "pong"
        # lock_timeout -> 503 "database"; then the breaker opens -> "circuit_open".
        assert reasons[0] == "database"
        assert "circuit_open" in reasons
        wait_until(lambda: c.get("/invoices").status_code == 200, what="recovery")
    wait_until(lambda: guard.breaker.state is BreakerState.CLOSED, what="closed circuit")
    assert guard.stats().in_flight == 0


def test_worker_decorator_sync_shares_the_scope_with_the_pool(invoices_db):
    guard = Guard("worker", breaker=quick_breaker(), observers=[])
    with GuardedPool(invoices_db, guard, limits=LIMITS, timeouts=TIMEOUTS) as pool:

        @guarded(guard)
        def ingest(n: int) -> int:
            scope = current_scope()
            with pool.connection() as c:
                assert current_scope() is scope  # one scope per task, not per connection
                row = c.execute("SELECT count(*) + %s FROM invoices", [n]).fetchone()
            assert row is not None
            return int(row[0])

        assert ingest(1) == 101
        with Locker(invoices_db):
            for _ in range(2):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    ingest(1)
            with pytest.raises(CircuitOpen) as info:
                ingest(1)
        assert info.value.retry_after_s >= 1
        assert guard.stats().admitted_total == 3
        assert guard.stats().in_flight == 0


def test_worker_decorator_async(invoices_db):
    # The pool caps the limit at its two connections, so three of the five tasks below
    # queue: a queue timeout as generous as the acquire timeout keeps a loaded machine,
    # slow to open the second connection, from shedding them (it did, at the default 50 ms).
    queue = LimitPolicy(queue_timeout_ms=30_000)
    guard = Guard("worker", breaker=quick_breaker(), limit=queue, observers=[])

    async def main() -> None:
        # Five tasks share two connections opened on demand: a generous acquire timeout
        # keeps the test independent of how fast a loaded machine opens connections.
        limits = PoolLimits(max_size=2, min_size=0, acquire_timeout_ms=30_000)
        async with AsyncGuardedPool(invoices_db, guard, limits=limits, timeouts=TIMEOUTS) as pool:

            @guarded(guard)
            async def ingest() -> int:
                async with pool.connection() as c:
                    cur = await c.execute("SELECT count(*) FROM invoices")
                    row = await cur.fetchone()
                assert row is not None
                return int(row[0])

            assert await ingest() == 100
            results = await asyncio.gather(*(ingest() for _ in range(5)))
            assert results == [100] * 5
            # The pool takes a returned connection back in a background task: wait for it.
            for _ in range(500):
                if pool.stats().in_use == 0:
                    break
                await asyncio.sleep(0.01)
            assert pool.stats().in_use == 0

    asyncio.run(main())
    assert guard.stats().outcome_total == {"success": 6}
