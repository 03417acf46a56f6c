import socket
import threading

import httpx
import psycopg

from pgwarden.guard import (
    AimdPolicy,
    BreakerPolicy,
    BreakerState,
    Guard,
    LimitPolicy,
    PoolLimits,
    SessionTimeouts,
)
from tests.guard.apps import starlette_app
from tests.guard.conftest import Locker, backends
from tests.guard.servers import UvicornThread, wait_until

APP = "guard-asgi-test"
TIMEOUTS = SessionTimeouts(statement_timeout_ms=60_000, lock_timeout_ms=100)


def serve(dsn: str, guard: Guard, max_size: int = 3):
    app, pool = starlette_app(
        f"{dsn} application_name={APP}",
        guard,
        limits=PoolLimits(max_size=max_size, min_size=0, acquire_timeout_ms=500),
        timeouts=TIMEOUTS,
    )
    return UvicornThread(app), pool


def fixed_limit(n: int, queue: int = 0) -> LimitPolicy:
    return LimitPolicy(
        algorithm=AimdPolicy(initial_limit=n, min_limit=n, max_limit=n),
        queue_size=queue,
        queue_timeout_ms=100,
    )


def test_sheds_fast_while_locked_keeps_no_db_routes_up_and_recovers(invoices_db, admin):
    guard = Guard(
        "asgi",
        breaker=BreakerPolicy(min_calls=3, open_ms=300, half_open_probes=1),
        observers=[],
    )
    server, _pool = serve(invoices_db, guard)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/invoices").json() == {"count": 100}
        seen: dict[int, int] = {}
        with Locker(invoices_db):
            shed = None
            for _ in range(200):
                r = client.get("/invoices")
                seen[r.status_code] = seen.get(r.status_code, 0) + 1
                assert client.get("/ping").text == "pong"
                assert backends(admin, APP) <= 3
                if r.headers.get("x-pgwarden-shed") == "circuit_open":
                    shed = r
                    break
            assert shed is not None, seen
            assert shed.status_code == 503
            assert int(shed.headers["retry-after"]) >= 1
            assert shed.json() == {"error": "database_unavailable", "reason": "circuit_open"}
            assert set(seen) == {503}
        wait_until(lambda: client.get("/invoices").status_code == 200, what="recovery")
        # The scope finishes just after the response is sent.
        wait_until(lambda: guard.breaker.state is BreakerState.CLOSED, what="closed circuit")
        assert client.get("/ping").status_code == 200
    stats = guard.stats()
    assert stats.in_flight == 0
    assert stats.breaker_state is BreakerState.CLOSED
    assert stats.outcome_total["failure"] >= 2  # 2 of 3 calls opened it


def _active_sleeps(admin: psycopg.Connection) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'",
        [APP],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_limit_sheds_excess_requests_without_touching_the_database(invoices_db, admin):
    guard = Guard("asgi", limit=fixed_limit(1), observers=[])
    server, _pool = serve(invoices_db, guard)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        results: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: results.append(client.get("/sleep?s=30")))
        slow.start()
        wait_until(lambda: _active_sleeps(admin) == 1, what="the slow request to run")
        r = client.get("/invoices")
        assert r.status_code == 503
        assert r.headers["x-pgwarden-shed"] == "limit"
        assert backends(admin, APP) == 1
        admin.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [APP],
        )
        slow.join(30)
        # QueryCanceled escaped the endpoint before it responded: a 503, not a 500.
        assert results[0].status_code == 503
        assert results[0].headers["x-pgwarden-shed"] == "database"
        wait_until(lambda: guard.stats().in_flight == 0, what="the slot to be released")
        assert client.get("/invoices").status_code == 200
    assert guard.stats().shed_total == {"limit": 1}


def test_client_disconnect_mid_request_leaks_no_connection(invoices_db, admin):
    guard = Guard("asgi", limit=fixed_limit(1), observers=[])
    server, pool = serve(invoices_db, guard, max_size=1)
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"GET /sleep?s=30 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: _active_sleeps(admin) == 1, what="the request to run")
            assert guard.stats().in_flight == 1
            sock.close()
            wait_until(lambda: _active_sleeps(admin) == 0, what="the query to be cancelled")
            wait_until(lambda: guard.stats().in_flight == 0, what="the slot to be released")
            wait_until(lambda: pool.stats().in_use == 0, what="the connection to be returned")
            assert client.get("/invoices").status_code == 200
        assert backends(admin, APP) <= 1
    assert guard.stats().outcome_total.get("ignore") == 3
