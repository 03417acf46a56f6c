"""Replay the Sendcloud incident against a Starlette app, with and without pgwarden.guard.

A throwaway cluster holds an `invoices` table; a Starlette app served by uvicorn (in a
subprocess, on 127.0.0.1) has `/invoices` (reads the table) and `/ping` (no database).
Retrying clients send a fixed rate of requests while an ACCESS EXCLUSIVE lock is held on
`invoices` for --lock-seconds. The same run is made against the unguarded app (a new
connection per request, no timeouts, as in the incident) and the guarded app (bounded
pool, breaker, adaptive limit, 503 + Retry-After), and the figures are printed side by side.

    .venv/bin/python bench/guard_replay.py                   # 45 s lock, ~2.5 minutes
    .venv/bin/python bench/guard_replay.py --lock-seconds 10  # quick run

Load is bounded in count and time and only ever targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

APP_NAME = "guard-replay-app"
HOST = "127.0.0.1"


# -- the application (runs in the uvicorn subprocess) -----------------------------------


def build_app(mode: str, dsn: str) -> object:
    """The Starlette app; `mode` is "guarded" or "unguarded"."""
    import psycopg
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    app_dsn = f"{dsn} application_name={APP_NAME}"
    query = "SELECT count(*), sum(amount) FROM invoices WHERE id BETWEEN %s AND %s + 100"

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong")

    if mode == "unguarded":

        async def invoices_unguarded(request: Request) -> Response:
            start = random.randint(1, 99_000)
            # As in the incident: a new connection per request, no timeouts.
            async with await psycopg.AsyncConnection.connect(app_dsn) as conn:
                cur = await conn.execute(query, [start, start])
                row = await cur.fetchone()
            return JSONResponse({"count": row[0] if row else None})

        return Starlette(routes=[Route("/invoices", invoices_unguarded), Route("/ping", ping)])

    from pgwarden.guard import (
        AimdPolicy,
        AsyncGuardedPool,
        BreakerPolicy,
        Guard,
        GuardMiddleware,
        LimitPolicy,
        PoolLimits,
        SessionTimeouts,
    )

    guard = Guard(
        "replay",
        breaker=BreakerPolicy(
            window_ms=2_000, min_calls=10, failure_rate=0.5, open_ms=1_000, half_open_probes=1
        ),
        limit=LimitPolicy(
            algorithm=AimdPolicy(initial_limit=10, min_limit=2, max_limit=10),
            queue_size=10,
            queue_timeout_ms=5,
        ),
    )
    pool = AsyncGuardedPool(
        app_dsn,
        guard,
        limits=PoolLimits(max_size=10, min_size=2, acquire_timeout_ms=500),
        timeouts=SessionTimeouts(statement_timeout_ms=5_000, lock_timeout_ms=500),
    )

    async def invoices_guarded(request: Request) -> Response:
        start = random.randint(1, 99_000)
        async with pool.connection() as conn:
            cur = await conn.execute(query, [start, start])
            row = await cur.fetchone()
        return JSONResponse({"count": row[0] if row else None})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with pool:
            yield

    return Starlette(
        routes=[Route("/invoices", invoices_guarded), Route("/ping", ping)],
        middleware=[Middleware(GuardMiddleware, guard=guard, exempt_paths=["/ping"])],
        lifespan=lifespan,
    )


def serve(mode: str, dsn: str, port: int) -> None:
    import logging

    import uvicorn

    logging.getLogger("pgwarden.guard").setLevel(logging.WARNING)
    uvicorn.run(
        build_app(mode, dsn),  # type: ignore[arg-type]
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


# -- load generation and measurement ----------------------------------------------------


@dataclass(slots=True)
class Attempt:
    path: str
    attempt: int
    sent: float
    done: float
    status: int  # 0 = client timeout / connection error
    shed: str | None


@dataclass(slots=True)
class Run:
    mode: str
    attempts: list[Attempt] = field(default_factory=list)
    peak_connections: int = 0
    peak_lock_waiters: int = 0
    lock_start: float = 0.0
    lock_end: float = 0.0
    end: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    rate_per_s: float
    nodb_rate_per_s: float
    warmup_s: float
    lock_s: float
    after_s: float
    client_timeout_s: float
    max_attempts: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def _request(client: object, run: Run, path: str, plan: Plan, stop_at: float) -> None:
    import httpx

    assert isinstance(client, httpx.AsyncClient)
    for attempt in range(1, plan.max_attempts + 1):
        sent = time.monotonic()
        status, shed, retry_after = 0, None, None
        try:
            r = await client.get(path, timeout=plan.client_timeout_s)
            status, shed = r.status_code, r.headers.get("x-pgwarden-shed")
            retry_after = r.headers.get("retry-after")
        except (httpx.TimeoutException, httpx.TransportError):
            pass
        run.attempts.append(Attempt(path, attempt, sent, time.monotonic(), status, shed))
        if status == 200:
            return
        # Retrying client: honour Retry-After, else exponential backoff with jitter.
        delay = float(retry_after) if retry_after else 0.2 * 2**attempt * random.uniform(0.5, 1.5)
        if time.monotonic() + delay >= stop_at:
            return
        await asyncio.sleep(delay)


async def _monitor(dsn: str, run: Run, stop: asyncio.Event) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            cur = await conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock')"
                " FROM pg_stat_activity WHERE application_name = %s",
                [APP_NAME],
            )
            row = await cur.fetchone()
            if row is not None:
                run.peak_connections = max(run.peak_connections, int(row[0]))
                run.peak_lock_waiters = max(run.peak_lock_waiters, int(row[1]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


async def _hold_lock(dsn: str, run: Run, plan: Plan, t0: float) -> None:
    import psycopg

    await asyncio.sleep(max(0.0, t0 + plan.warmup_s - time.monotonic()))
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        run.lock_start = time.monotonic()
        await asyncio.sleep(plan.lock_s)
        await conn.rollback()
        run.lock_end = time.monotonic()


async def _drive(base_url: str, admin_dsn: str, run: Run, plan: Plan) -> None:
    import httpx

    limits = httpx.Limits(max_connections=4000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
        stop = asyncio.Event()
        monitor = asyncio.create_task(_monitor(admin_dsn, run, stop))
        t0 = time.monotonic()
        locker = asyncio.create_task(_hold_lock(admin_dsn, run, plan, t0))
        total_s = plan.warmup_s + plan.lock_s + plan.after_s
        stop_at = t0 + total_s
        tasks: set[asyncio.Task[None]] = set()

        async def arrivals(path: str, rate: float) -> None:
            n = int(total_s * rate)  # bounded count
            for i in range(n):
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                task = asyncio.create_task(_request(client, run, path, plan, stop_at))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        await asyncio.gather(
            arrivals("/invoices", plan.rate_per_s), arrivals("/ping", plan.nodb_rate_per_s)
        )
        await locker
        # Let outstanding attempts finish (each is bounded by the client timeout).
        if tasks:
            await asyncio.wait(set(tasks), timeout=plan.client_timeout_s + 2)
        for task in list(tasks):
            task.cancel()
        run.end = time.monotonic()
        stop.set()
        await monitor


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{port}/ping", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("app server did not start")


def _terminate_app_backends(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [APP_NAME],
        )


def run_mode(mode: str, dsn: str, admin_dsn: str, plan: Plan, log_dir: Path) -> Run:
    port = _free_port()
    log = (log_dir / f"{mode}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--dsn", dsn, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    run = Run(mode)
    try:
        _wait_http(port, proc)
        # The load generator's own GC pauses would show up as server latency.
        gc.disable()
        try:
            asyncio.run(_drive(f"http://{HOST}:{port}", admin_dsn, run, plan))
        finally:
            gc.enable()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        _terminate_app_backends(admin_dsn)
    return run


# -- figures ----------------------------------------------------------------------------


def _p99_ms(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def figures(run: Run, plan: Plan) -> dict[str, str]:
    db = [a for a in run.attempts if a.path == "/invoices"]
    nodb_lock = [
        a for a in run.attempts if a.path == "/ping" and run.lock_start <= a.sent < run.lock_end
    ]
    # Shed = refused by the breaker or the limit without touching the database. A 503
    # with reason "database" is a database attempt that hit lock/statement/pool timeouts.
    shed = [a.done - a.sent for a in db if a.status == 503 and a.shed not in (None, "database")]
    db_503 = [a.done - a.sent for a in db if a.status == 503 and a.shed == "database"]
    reasons: dict[str, int] = {}
    for a in db:
        if a.status == 503:
            reasons[a.shed or "?"] = reasons.get(a.shed or "?", 0) + 1
    failed = [a.done - a.sent for a in db if a.status != 200]
    base = [a for a in db if a.status == 200 and a.sent >= run.lock_start - plan.warmup_s + 1]
    base = [a for a in base if a.sent < run.lock_start]
    base_rate = len(base) / max(1e-9, plan.warmup_s - 1)
    # Recovery: from the lock's end, the first 0.5 s bin (by send time) after which every
    # bin has >= 90 % successful /invoices attempts. A ratio, not a count, so that a
    # load generator running behind schedule does not read as a slow server.
    bin_s = 0.5
    n_bins = int((run.end - run.lock_end - plan.client_timeout_s) / bin_s)
    sent = [0] * max(n_bins, 0)
    ok = [0] * max(n_bins, 0)
    for a in db:
        if a.sent >= run.lock_end:
            i = int((a.sent - run.lock_end) / bin_s)
            if i < n_bins:
                sent[i] += 1
                ok[i] += a.status == 200
    recovered: float | None = None
    for i in range(n_bins):
        if all(ok[j] >= 0.9 * sent[j] for j in range(i, n_bins)):
            recovered = i * bin_s
            break
    ok_nodb = sum(1 for a in nodb_lock if a.status == 200)
    p99_shed = _p99_ms(shed)
    p99_failed = _p99_ms(failed)
    p99_db_503 = _p99_ms(db_503)
    return {
        "peak database connections": str(run.peak_connections),
        "peak sessions waiting on locks": str(run.peak_lock_waiters),
        "no-DB endpoint success during lock": (
            f"{100 * ok_nodb / len(nodb_lock):.1f} % ({ok_nodb}/{len(nodb_lock)})"
            if nodb_lock
            else "n/a"
        ),
        "p99 of shed responses (no DB touched)": (
            f"{p99_shed:.1f} ms (n={len(shed)})" if p99_shed is not None else "none shed"
        ),
        "p99 of DB-timeout 503s": (
            f"{p99_db_503:.0f} ms (n={len(db_503)})" if p99_db_503 is not None else "none"
        ),
        "p99 of all failed DB attempts": (
            f"{p99_failed:.0f} ms (n={len(failed)})" if p99_failed is not None else "none"
        ),
        "recovery after lock end": (
            f"{recovered:.1f} s" if recovered is not None else "not within the run"
        ),
        "pre-lock throughput": f"{base_rate:.1f} req/s",
        "DB attempts (ok / 503 / 5xx / timeout)": " / ".join(
            str(n)
            for n in (
                sum(1 for a in db if a.status == 200),
                sum(1 for a in db if a.status == 503),
                sum(1 for a in db if a.status >= 500 and a.status != 503),
                sum(1 for a in db if a.status == 0),
            )
        ),
        "503 by reason": ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "-",
    }


def _dump(run: Run, path: Path) -> None:
    import json

    t0 = run.lock_start
    rows = [
        [a.path, a.attempt, round(a.sent - t0, 3), round(a.done - a.sent, 4), a.status, a.shed]
        for a in run.attempts
    ]
    path.write_text(json.dumps({"lock_s": run.lock_end - t0, "attempts": rows}))


def print_table(results: dict[str, dict[str, str]]) -> None:
    modes = list(results)
    rows = list(next(iter(results.values())))
    w0 = max(len(r) for r in rows) + 2
    widths = [max(len(m), *(len(results[m][r]) for r in rows)) + 2 for m in modes]
    print("".ljust(w0) + "".join(m.ljust(w) for m, w in zip(modes, widths, strict=True)))
    for r in rows:
        cells = "".join(results[m][r].ljust(w) for m, w in zip(modes, widths, strict=True))
        print(r.ljust(w0) + cells)


def prepare(rows: int) -> tuple[object, str, str]:
    import psycopg

    from pgwarden.pg.cluster import Cluster

    cluster = Cluster.start(tcp=True, settings={"max_connections": "400"})
    dsn = cluster.create_database("replay")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int PRIMARY KEY, amount int NOT NULL)")
        conn.execute(
            "INSERT INTO invoices SELECT g, g %% 1000 FROM generate_series(1, %s) g", [rows]
        )
        conn.execute("VACUUM ANALYZE invoices")
    return cluster, dsn, dsn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lock-seconds", type=float, default=45.0)
    ap.add_argument("--rate", type=float, default=50.0, help="/invoices requests per second")
    ap.add_argument("--nodb-rate", type=float, default=10.0, help="/ping requests per second")
    ap.add_argument("--warmup-seconds", type=float, default=5.0)
    ap.add_argument("--after-seconds", type=float, default=15.0)
    ap.add_argument("--client-timeout-seconds", type=float, default=5.0)
    ap.add_argument("--max-attempts", type=int, default=4)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--modes", default="unguarded,guarded")
    ap.add_argument("--serve", choices=["guarded", "unguarded"], help=argparse.SUPPRESS)
    ap.add_argument("--dsn", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.dsn, args.port)
        return 0
    if not 0 < args.rate <= 200 or not 0 < args.nodb_rate <= 200:
        ap.error("rates must be in (0, 200] requests per second")
    if not 0 < args.lock_seconds <= 300:
        ap.error("--lock-seconds must be in (0, 300]")
    plan = Plan(
        rate_per_s=args.rate,
        nodb_rate_per_s=args.nodb_rate,
        warmup_s=args.warmup_seconds,
        lock_s=args.lock_seconds,
        after_s=args.after_seconds,
        client_timeout_s=args.client_timeout_seconds,
        max_attempts=args.max_attempts,
    )
    cluster, dsn, admin_dsn = prepare(args.rows)
    results: dict[str, dict[str, str]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="guard-replay-") as tmp:
            for mode in args.modes.split(","):
                print(
                    f"running {mode} ({plan.warmup_s + plan.lock_s + plan.after_s:.0f} s)...",
                    file=sys.stderr,
                )
                run = run_mode(mode, dsn, admin_dsn, plan, Path(tmp))
                results[mode] = figures(run, plan)
                if os.environ.get("GUARD_REPLAY_DUMP"):
                    _dump(run, Path(os.environ["GUARD_REPLAY_DUMP"]) / f"{mode}.json")
                if os.environ.get("GUARD_REPLAY_LOGS"):
                    print((Path(tmp) / f"{mode}.log").read_text()[-3000:], file=sys.stderr)
    finally:
        cluster.stop()  # type: ignore[attr-defined]
    print(
        f"\nlock {plan.lock_s:.0f} s on invoices, {plan.rate_per_s:.0f} req/s to /invoices, "
        f"{plan.nodb_rate_per_s:.0f} req/s to /ping, clients time out after "
        f"{plan.client_timeout_s:.0f} s and retry up to {plan.max_attempts} times\n"
    )
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
