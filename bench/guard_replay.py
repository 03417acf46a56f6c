"""Replay the Sendcloud incident against docs/guard.md's example app, with and without the guard.

A throwaway cluster holds an `invoices` table. The guarded app is the Python block of
docs/guard.md's "Starlette (or FastAPI)" section, executed as written (so the figures are
those of the documented configuration); the unguarded app has the same endpoints with a
new connection per request and no timeouts, as in the incident. Each is served by uvicorn
in a subprocess on 127.0.0.1: `/invoices/<id>` reads the table, `/healthz` needs no
database. Retrying clients (Retry-After honoured, up to --max-attempts) send a fixed rate
of requests while an ACCESS EXCLUSIVE lock is held on `invoices` for --lock-seconds.

First printed: the five figures the guard must meet (peak app connections <= 12, lock
waiters <= 12, /healthz success >= 99 %, p99 of all 503s during the lock < 50 ms at the
client, recovery <= 3 s), per run, with the unguarded run beside them and the ratio where
both are counts; the exit status is 1 when a guarded run misses one. Then the details.

    .venv/bin/python bench/guard_replay.py                   # 20 s lock, ~1.5 minutes
    .venv/bin/python bench/guard_replay.py --modes guarded --repeat 3   # the spread

Shed latency is reported twice: the client round trip (loopback TCP, including the load
generator's own scheduling) and inside the app (arrival in the outermost ASGI layer to the
start of the response). The two cores are shared by the generator, the app, PostgreSQL and
whatever else runs on the machine; the CPU row says how busy each was during the lock
("rest" is everything else, including backends that exited between samples), and the
event-loop lag row shows stalls of the app's and the generator's loops.
GUARD_REPLAY_DUMP=DIR writes every attempt and server timing, matched by x-replay-id.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_NAME = "guard-replay-app"
HOST = "127.0.0.1"
DB_PATH = "/invoices"  # requested as /invoices/<id>; reads the locked table
NODB_PATH = "/healthz"  # needs no database


# -- the application (runs in the uvicorn subprocess) -----------------------------------


DOCS = Path(__file__).resolve().parent.parent / "docs" / "guard.md"
DOCS_SECTION = "## Starlette (or FastAPI)"


def docs_example() -> str:
    """The first Python block under docs/guard.md's Starlette section, verbatim."""
    text = DOCS.read_text()
    section = text[text.index(DOCS_SECTION) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def build_app(mode: str, dsn: str) -> object:
    """The app; "guarded" is docs/guard.md's example as written, "unguarded" the same
    endpoints with a new connection per request and no timeouts, as in the incident."""
    app_dsn = f"{dsn} application_name={APP_NAME}"
    if mode == "guarded":
        os.environ["DATABASE_URL"] = app_dsn
        namespace: dict[str, Any] = {"__name__": "guard_docs_example"}
        exec(compile(docs_example(), str(DOCS), "exec"), namespace)
        return namespace["app"]

    import psycopg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def invoice(request: Request) -> JSONResponse:
        async with await psycopg.AsyncConnection.connect(app_dsn) as conn:
            cur = await conn.execute(
                "SELECT id, amount FROM invoices WHERE id = %s", [request.path_params["invoice_id"]]
            )
            return JSONResponse({"invoice": await cur.fetchone()})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/invoices/{invoice_id:int}", invoice), Route("/healthz", healthz)]
    )


class ServerTrace:
    """Server-side timings: arrival in the outermost ASGI layer to response start.

    Also records event-loop lag (a 10 ms ticker that wakes late) and GC pauses, so that a
    slow response can be told apart from a slow client. Written as JSON on shutdown.
    """

    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.path = path
        self.requests: list[tuple[str, float, float, int, str | None, int]] = []
        self.lags: list[tuple[float, float]] = []
        self.gcs: list[tuple[float, float, int]] = []
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_start = now
        else:
            self.gcs.append((self._gc_start, now - self._gc_start, info["generation"]))

    async def _ticker(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag = time.monotonic() - before - 0.01
            if lag > 0.002:
                self.lags.append((before, lag))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            ticker = asyncio.get_running_loop().create_task(self._ticker())

            async def lifespan_send(message: Any) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    ticker.cancel()
                    self.dump()
                await send(message)

            await self.app(scope, receive, lifespan_send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        path = str(scope.get("path", ""))
        rid = 0
        for k, v in scope.get("headers", ()):
            if k == b"x-replay-id":
                rid = int(v)

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                shed = None
                for k, v in message.get("headers", ()):
                    if k == b"x-pgwarden-shed":
                        shed = v.decode()
                self.requests.append(
                    (path, arrived, time.monotonic(), int(message["status"]), shed, rid)
                )
            await send(message)

        await self.app(scope, receive, timed_send)

    def dump(self) -> None:
        import json

        self.path.write_text(
            json.dumps({"requests": self.requests, "lags": self.lags, "gcs": self.gcs})
        )


def serve(mode: str, dsn: str, port: int, trace_file: str | None = None) -> None:
    import logging

    import uvicorn

    logging.getLogger("pgwarden.guard").setLevel(logging.WARNING)
    app: Any = build_app(mode, dsn)
    trace = ServerTrace(app, Path(trace_file)) if trace_file else None
    uvicorn.run(
        trace or app,
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
    rid: int = 0  # x-replay-id, to match the server's timing


@dataclass(slots=True)
class Run:
    mode: str
    attempts: list[Attempt] = field(default_factory=list)
    peak_connections: int = 0
    peak_lock_waiters: int = 0
    lock_start: float = 0.0
    lock_end: float = 0.0
    end: float = 0.0
    # Server side: (path, arrived, response started, status, shed reason, x-replay-id).
    server: list[tuple[str, float, float, int, str | None, int]] = field(default_factory=list)
    server_lags: list[tuple[float, float]] = field(default_factory=list)
    server_gcs: list[tuple[float, float, int]] = field(default_factory=list)
    client_lags: list[tuple[float, float]] = field(default_factory=list)
    traced: bool = False  # the app wrote its trace (not when it had to be killed)
    # Once a second: (time, cores busy, cores used by generator, app server, postgres).
    cpu: list[tuple[float, float, float, float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plan:
    rate_per_s: float
    nodb_rate_per_s: float
    warmup_s: float
    lock_s: float
    after_s: float
    client_timeout_s: float
    max_attempts: int
    rows: int
    keepalive: bool


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class _Client:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    The load generator shares two cores with the app and PostgreSQL; httpx costs about
    1.5 ms of CPU per request, which at a few hundred requests a second both starves the
    app and shows up as latency the server never spent. This client costs a fraction of
    that. Each request carries `x-replay-id` so that the server's own timing of it can be
    matched to the client's.
    """

    def __init__(self, host: str, port: int, max_connections: int, keepalive: bool) -> None:
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._next_id = 0

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def get(self, path: str, rid: int, timeout_s: float) -> tuple[int, dict[str, str]]:
        """(status, lower-cased headers); raises OSError, TimeoutError or IncompleteReadError."""
        async with asyncio.timeout(timeout_s), self._slots:
            while self._idle:
                # A kept-alive connection the server has closed meanwhile (uvicorn drops
                # idle ones after 5 s) fails before any response byte: use a fresh one.
                reader, writer = self._idle.pop()
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    return await self._exchange(reader, writer, path, rid)
            reader, writer = await asyncio.open_connection(self.host, self.port)
            return await self._exchange(reader, writer, path, rid)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, rid: int
    ) -> tuple[int, dict[str, str]]:
        try:
            close = "" if self.keepalive else "connection: close\r\n"
            request = (
                f"GET {path} HTTP/1.1\r\nhost: {self.host}\r\nx-replay-id: {rid}\r\n{close}\r\n"
            )
            writer.write(request.encode())
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *lines = head.split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if not self.keepalive or headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return int(status_line.split(" ", 2)[1]), headers

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


def _url(path: str, rows: int) -> str:
    """/invoices -> /invoices/<a random existing id>; other paths as they are."""
    return f"{path}/{random.randint(1, rows)}" if path == DB_PATH else path


async def _request(client: _Client, run: Run, path: str, plan: Plan, stop_at: float) -> None:
    url = _url(path, plan.rows)
    for attempt in range(1, plan.max_attempts + 1):
        rid = client.new_id()
        sent = time.monotonic()
        status, shed, retry_after = 0, None, None
        try:
            status, headers = await client.get(url, rid, plan.client_timeout_s)
            shed, retry_after = headers.get("x-pgwarden-shed"), headers.get("retry-after")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        run.attempts.append(Attempt(path, attempt, sent, time.monotonic(), status, shed, rid))
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


async def _client_ticker(run: Run, stop: asyncio.Event) -> None:
    """Lateness of the load generator's own loop (it inflates what it measures)."""
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.01)
        lag = time.monotonic() - before - 0.01
        if lag > 0.002:
            run.client_lags.append((before, lag))


def _cpu_snapshot(app_pid: int) -> dict[str, float]:
    """Jiffies: machine total and busy, and used by the load generator (this process), the
    app server, this bench's PostgreSQL (the postmaster we started and its backends)."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    out = {"total": sum(fields), "busy": sum(fields) - fields[3] - fields[4]}
    out.update(gen=0.0, app=0.0, pg=0.0)
    me = os.getpid()
    procs: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, _, rest = f.read().rpartition(")")
        except OSError:
            continue
        parts = rest.split()
        comm = head.partition("(")[2]
        procs[int(entry)] = (int(parts[1]), comm, float(parts[11]) + float(parts[12]))
    for pid, (ppid, comm, used) in procs.items():
        if pid == me:
            out["gen"] += used
        elif pid == app_pid:
            out["app"] += used
        elif comm == "postgres" and (
            ppid == me or (ppid in procs and procs[ppid][0] == me and procs[ppid][1] == comm)
        ):
            out["pg"] += used
    return out


async def _cpu_sampler(run: Run, app_pid: int, stop: asyncio.Event) -> None:
    """Once a second: cores busy on the machine, used by the generator, the app, postgres."""
    ncpu = os.cpu_count() or 1
    last = _cpu_snapshot(app_pid)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        now = _cpu_snapshot(app_pid)
        span = max(1.0, now["total"] - last["total"]) / ncpu  # jiffies per core
        d = {k: (now[k] - last[k]) / span for k in ("busy", "gen", "app", "pg")}
        # postgres backends come and go: a vanished one's jiffies read as negative.
        d["pg"] = max(0.0, d["pg"])
        run.cpu.append((time.monotonic(), d["busy"], d["gen"], d["app"], d["pg"]))
        last = now


async def _hold_lock(dsn: str, run: Run, plan: Plan, t0: float) -> None:
    import psycopg

    await asyncio.sleep(max(0.0, t0 + plan.warmup_s - time.monotonic()))
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        run.lock_start = time.monotonic()
        await asyncio.sleep(plan.lock_s)
        await conn.rollback()
        run.lock_end = time.monotonic()


async def _drive(port: int, admin_dsn: str, run: Run, plan: Plan, app_pid: int) -> None:
    client = _Client(HOST, port, max_connections=4000, keepalive=plan.keepalive)
    try:
        stop = asyncio.Event()
        monitor = asyncio.create_task(_monitor(admin_dsn, run, stop))
        ticker = asyncio.create_task(_client_ticker(run, stop))
        sampler = asyncio.create_task(_cpu_sampler(run, app_pid, stop))
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
            arrivals(DB_PATH, plan.rate_per_s), arrivals(NODB_PATH, plan.nodb_rate_per_s)
        )
        await locker
        # Let outstanding attempts finish (each is bounded by the client timeout).
        if tasks:
            await asyncio.wait(set(tasks), timeout=plan.client_timeout_s + 2)
        for task in list(tasks):
            task.cancel()
        run.end = time.monotonic()
        stop.set()
        await asyncio.gather(monitor, ticker, sampler)
    finally:
        client.close()


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{port}{NODB_PATH}", timeout=1).status_code == 200:
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
    trace_file = log_dir / f"{mode}.trace.json"
    argv = [sys.executable, __file__, "--serve", mode, "--dsn", dsn, "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--trace-file", str(trace_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    run = Run(mode)
    try:
        _wait_http(port, proc)
        # The load generator's own GC pauses would show up as server latency.
        gc.disable()
        try:
            asyncio.run(_drive(port, admin_dsn, run, plan, proc.pid))
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
    if trace_file.exists():
        import json

        trace = json.loads(trace_file.read_text())
        run.traced = True
        run.server = [tuple(r) for r in trace["requests"]]
        run.server_lags = [tuple(r) for r in trace["lags"]]
        run.server_gcs = [tuple(r) for r in trace["gcs"]]
    return run


# -- figures ----------------------------------------------------------------------------


def _p99_ms(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _recovery_s(run: Run, plan: Plan, db: list[Attempt]) -> float | None:
    """From the lock's end, the first 0.5 s bin (by send time) after which every bin has
    >= 90 % successful /invoices attempts. A ratio, not a count, so that a load generator
    running behind schedule does not read as a slow server. None: not within the run."""
    bin_s = 0.5
    n_bins = max(0, int((run.end - run.lock_end - plan.client_timeout_s) / bin_s))
    sent = [0] * n_bins
    ok = [0] * n_bins
    for a in db:
        if a.sent >= run.lock_end:
            i = int((a.sent - run.lock_end) / bin_s)
            if i < n_bins:
                sent[i] += 1
                ok[i] += a.status == 200
    for i in range(n_bins):
        if all(ok[j] >= 0.9 * sent[j] for j in range(i, n_bins)):
            return i * bin_s
    return None


@dataclass(frozen=True, slots=True)
class Check:
    """One of the five figures the guard must meet, with its threshold."""

    name: str
    threshold: str
    value: float | None  # None: not measurable in this run (e.g. no 503 at all)
    text: str
    ok: bool


def checks(run: Run, plan: Plan) -> list[Check]:
    """The five figures of docs/guard.md's replay, against their thresholds."""
    db = [a for a in run.attempts if a.path == DB_PATH]
    during = [a for a in db if run.lock_start <= a.sent < run.lock_end]
    nodb = [
        a for a in run.attempts if a.path == NODB_PATH and run.lock_start <= a.sent < run.lock_end
    ]
    ok_nodb = sum(1 for a in nodb if a.status == 200)
    nodb_pct = 100 * ok_nodb / len(nodb) if nodb else None
    all_503 = [a.done - a.sent for a in during if a.status == 503]
    p99_503 = _p99_ms(all_503)
    if p99_503 is not None:
        text_503 = f"{p99_503:.1f} ms (n={len(all_503)})"
    else:
        failed = [a.done - a.sent for a in during if a.status != 200]
        p99_failed = _p99_ms(failed)
        text_503 = "no 503" + (
            f"; p99 of {len(failed)} failures {p99_failed:.0f} ms" if p99_failed is not None else ""
        )
    recovered = _recovery_s(run, plan, db)
    return [
        Check(
            "peak app database connections",
            "<= 12",
            run.peak_connections,
            str(run.peak_connections),
            run.peak_connections <= 12,
        ),
        Check(
            "peak app sessions waiting on locks",
            "<= 12",
            run.peak_lock_waiters,
            str(run.peak_lock_waiters),
            run.peak_lock_waiters <= 12,
        ),
        Check(
            "/healthz success during the lock",
            ">= 99 %",
            nodb_pct,
            f"{nodb_pct:.1f} % ({ok_nodb}/{len(nodb)})" if nodb_pct is not None else "n/a",
            nodb_pct is not None and nodb_pct >= 99.0,
        ),
        Check(
            "p99 of all 503s during the lock (client)",
            "< 50 ms",
            p99_503,
            text_503,
            p99_503 is not None and p99_503 < 50.0,
        ),
        Check(
            "recovery after the lock ends",
            "<= 3 s",
            recovered,
            f"{recovered:.1f} s" if recovered is not None else "not within the run",
            recovered is not None and recovered <= 3.0,
        ),
    ]


def print_checks(results: dict[str, list[Check]]) -> bool:
    """The five figures per run, the ratio guarded/unguarded where both are counts, and
    whether every guarded run met every threshold (the return value)."""
    modes = list(results)
    guarded = [m for m in modes if m.startswith("guarded")]
    base = results.get("unguarded")
    table: dict[str, dict[str, str]] = {"threshold": {}}
    for m in modes:
        table[m] = {}
    if base is not None and guarded:
        table["ratio"] = {}
    for i, c in enumerate(next(iter(results.values()))):
        table["threshold"][c.name] = c.threshold
        for m in modes:
            r = results[m][i]
            table[m][r.name] = r.text + ("" if m == "unguarded" else "  ok" if r.ok else "  FAIL")
        if "ratio" in table and base is not None:
            b, g = base[i].value, results[guarded[0]][i].value
            ratio = f"1/{b / g:.0f}" if i < 2 and b and g else "-"
            table["ratio"][c.name] = ratio
    print_table(table)
    return all(c.ok for m in guarded for c in results[m])


def figures(run: Run, plan: Plan) -> dict[str, str]:
    db = [a for a in run.attempts if a.path == DB_PATH]
    nodb_lock = [
        a for a in run.attempts if a.path == NODB_PATH and run.lock_start <= a.sent < run.lock_end
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
    opened = [a.done for a in db if a.shed == "circuit_open" and a.sent >= run.lock_start]
    base = [a for a in db if a.status == 200 and a.sent >= run.lock_start - plan.warmup_s + 1]
    base = [a for a in base if a.sent < run.lock_start]
    base_rate = len(base) / max(1e-9, plan.warmup_s - 1)
    recovered = _recovery_s(run, plan, db)
    ok_nodb = sum(1 for a in nodb_lock if a.status == 200)
    # The machine's own tail: an endpoint that does nothing, timed the same way.
    nodb_ok = [a.done - a.sent for a in nodb_lock if a.status == 200]
    p99_nodb = _p99_ms(nodb_ok)
    p99_shed = _p99_ms(shed)
    # The same responses timed inside the app: arrival in the outermost ASGI layer (after
    # uvicorn parsed the request) to the start of the response.
    shed_server = [
        b - a
        for path, a, b, st, sh, _ in run.server
        if path.startswith(DB_PATH) and st == 503
        if sh not in (None, "database")
    ]
    p99_shed_server = _p99_ms(shed_server)
    lags = [lag for t, lag in run.server_lags if run.lock_start <= t < run.lock_end]
    gen_lags = [lag for t, lag in run.client_lags if run.lock_start <= t < run.lock_end]
    cpu = [c for c in run.cpu if run.lock_start < c[0] <= run.lock_end]
    n_cpu = max(1, len(cpu))
    busy, gen, app, pg = (sum(c[i] for c in cpu) / n_cpu for i in range(1, 5))
    other = max(0.0, busy - gen - app - pg)
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
        "p99 of shed responses, client round trip": (
            f"{p99_shed:.1f} ms (n={len(shed)})" if p99_shed is not None else "none shed"
        ),
        "p99 of /healthz (no database, not guarded)": (
            f"{p99_nodb:.1f} ms (n={len(nodb_ok)})" if p99_nodb is not None else "none"
        ),
        "p99 of shed responses, inside the app": (
            f"{p99_shed_server:.2f} ms (n={len(shed_server)})"
            if p99_shed_server is not None
            else "none shed"
        ),
        "max event-loop lag during lock (app / gen)": (
            (f"{1000 * max(lags, default=0.0):.0f} ms" if run.traced else "n/a (app killed)")
            + f" / {1000 * max(gen_lags, default=0.0):.0f} ms"
        ),
        "CPU cores during lock (gen/app/pg/rest)": (
            f"{gen:.2f}/{app:.2f}/{pg:.2f}/{other:.2f} of {os.cpu_count()}"
        ),
        "p99 of DB-timeout 503s": (
            f"{p99_db_503:.0f} ms (n={len(db_503)})" if p99_db_503 is not None else "none"
        ),
        "p99 of all failed DB attempts": (
            f"{p99_failed:.0f} ms (n={len(failed)})" if p99_failed is not None else "none"
        ),
        "first circuit_open after lock start": (
            f"{min(opened) - run.lock_start:.2f} s" if opened else "never"
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
        [
            a.path,
            a.attempt,
            round(a.sent - t0, 4),
            round(a.done - a.sent, 5),
            a.status,
            a.shed,
            a.rid,
        ]
        for a in run.attempts
    ]
    server = [
        [p, round(a - t0, 4), round(b - a, 5), st, sh, rid] for p, a, b, st, sh, rid in run.server
    ]
    path.write_text(
        json.dumps(
            {
                "lock_s": run.lock_end - t0,
                "attempts": rows,
                "server": server,
                "server_lags": [[round(t - t0, 4), lag] for t, lag in run.server_lags],
                "server_gcs": [[round(t - t0, 4), d, g] for t, d, g in run.server_gcs],
                "client_lags": [[round(t - t0, 4), lag] for t, lag in run.client_lags],
                "cpu": [[round(t - t0, 2), *rest] for t, *rest in run.cpu],
            }
        )
    )


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
    ap.add_argument("--lock-seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=50.0, help="/invoices requests per second")
    ap.add_argument("--nodb-rate", type=float, default=10.0, help="/healthz requests per second")
    ap.add_argument("--warmup-seconds", type=float, default=5.0)
    ap.add_argument("--after-seconds", type=float, default=15.0)
    ap.add_argument("--client-timeout-seconds", type=float, default=5.0)
    ap.add_argument("--max-attempts", type=int, default=4)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument(
        "--no-keepalive", action="store_true", help="a new TCP connection for every request"
    )
    ap.add_argument("--modes", default="unguarded,guarded")
    ap.add_argument(
        "--repeat", type=int, default=1, help="guarded runs (the spread on a busy machine)"
    )
    ap.add_argument("--serve", choices=["guarded", "unguarded"], help=argparse.SUPPRESS)
    ap.add_argument("--dsn", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--trace-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.dsn, args.port, args.trace_file)
        return 0
    if not 0 < args.rate <= 200 or not 0 < args.nodb_rate <= 200:
        ap.error("rates must be in (0, 200] requests per second")
    if not 0 < args.lock_seconds <= 300:
        ap.error("--lock-seconds must be in (0, 300]")
    if not 1 <= args.repeat <= 10:
        ap.error("--repeat must be in [1, 10]")
    plan = Plan(
        rate_per_s=args.rate,
        nodb_rate_per_s=args.nodb_rate,
        warmup_s=args.warmup_seconds,
        lock_s=args.lock_seconds,
        after_s=args.after_seconds,
        client_timeout_s=args.client_timeout_seconds,
        max_attempts=args.max_attempts,
        rows=args.rows,
        keepalive=not args.no_keepalive,
    )
    cluster, dsn, admin_dsn = prepare(args.rows)
    runs: list[tuple[str, str]] = []  # (label, mode)
    for mode in args.modes.split(","):
        n = args.repeat if mode == "guarded" else 1
        runs += [(mode if i == 0 else f"{mode} #{i + 1}", mode) for i in range(n)]
    results: dict[str, dict[str, str]] = {}
    verdicts: dict[str, list[Check]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="guard-replay-") as tmp:
            for label, mode in runs:
                print(
                    f"running {label} ({plan.warmup_s + plan.lock_s + plan.after_s:.0f} s)...",
                    file=sys.stderr,
                )
                run = run_mode(mode, dsn, admin_dsn, plan, Path(tmp))
                results[label] = figures(run, plan)
                verdicts[label] = checks(run, plan)
                name = label.replace(" #", "-")
                if os.environ.get("GUARD_REPLAY_DUMP"):
                    _dump(run, Path(os.environ["GUARD_REPLAY_DUMP"]) / f"{name}.json")
                if os.environ.get("GUARD_REPLAY_LOGS"):
                    print((Path(tmp) / f"{mode}.log").read_text()[-3000:], file=sys.stderr)
    finally:
        cluster.stop()  # type: ignore[attr-defined]
    print(
        "\nguarded: docs/guard.md's example as written; unguarded: a new connection per"
        " request, no timeouts"
    )
    print(
        f"lock {plan.lock_s:.0f} s on invoices, {plan.rate_per_s:.0f} req/s to /invoices, "
        f"{plan.nodb_rate_per_s:.0f} req/s to /healthz, clients time out after "
        f"{plan.client_timeout_s:.0f} s and retry up to {plan.max_attempts} times, "
        f"{'keep-alive' if plan.keepalive else 'a new connection per request'}\n"
    )
    passed = print_checks(verdicts)
    print()
    print_table(results)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
