"""Replay the Sendcloud incident: a migration under API-like load, naive vs pgwarden.

A load generator imitates the API: an open-loop fixed rate of point reads and
inserts on `invoices`, a new connection per request, a client timeout and
client retries, as in the incident. A sampler records connections and sessions
waiting on locks every 100 ms. The migration runs either naively (psql
--single-transaction, what a migration runner does) or with `pgwarden apply
--rewrite`, or is any command given in `ReplaySettings.command` (e.g.
`manage.py pgwarden migrate`, `alembic upgrade head`). Used by `pgwarden demo`,
`bench/incident_replay.py` and `bench/frameworks_replay.py`.

Load only ever targets the throwaway cluster's private socket, bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.pg.cluster import Cluster
from pgwarden.sample import create_sample_schema

__all__ = ["ReplaySettings", "Run", "load_templates", "run_one"]

APP = "api"
ACCOUNTS = 50_000


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """Timing of one replay run."""

    rate_per_s: float = 50.0
    client_timeout_s: float = 5.0
    client_retries: int = 3
    warmup_s: float = 5.0
    cooldown_s: float = 10.0
    report_hold_s: float = 30.0  # scenario (b): the long transaction holding a lock
    run_limit_s: float = 240.0
    # A migration command instead of psql/pgwarden apply (any tool name). Arguments
    # and `command_env` values are formatted with {dsn}, {url} (of the run's
    # database), {db} and {journal}; the command runs in `command_cwd`.
    command: tuple[str, ...] = ()
    command_env: tuple[tuple[str, str], ...] = ()
    command_cwd: str | None = None
    # The FK whose validity is reported; None: every FK of invoices (at least one).
    constraint: str | None = "invoices_payment_account_id_fkey"
    # A query run on the run's database at the end (e.g. the migration history);
    # its rows go to `Run.check`.
    check_sql: str | None = None


@dataclass
class Run:
    """One scenario x tool: the time series and the figures."""

    scenario: str
    tool: str
    rate: float
    t0: float = 0.0
    migration_start: float = 0.0
    migration_end: float = 0.0
    migration_rc: int | None = None
    completions: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # t, conns, lock waits
    constraint_valid: bool = False
    output: str = ""
    check: list[tuple[object, ...]] = field(default_factory=list)

    def per_second(self) -> list[int]:
        """Requests completed in each second since the run started."""
        end = max([self.migration_end, *self.completions], default=self.t0) - self.t0
        buckets = [0] * (int(end) + 1)
        for c in self.completions:
            buckets[int(c - self.t0)] += 1
        return buckets

    @property
    def stall_s(self) -> int:
        """Whole seconds after the migration started with under half the target rate done."""
        b = self.per_second()
        start = int(self.migration_start - self.t0)
        return sum(1 for n in b[start:-1] if n < 0.5 * self.rate)  # last bucket is partial

    @property
    def peak_connections(self) -> int:
        return max((s[1] for s in self.samples), default=0)

    @property
    def peak_lock_waits(self) -> int:
        return max((s[2] for s in self.samples), default=0)

    @property
    def duration_s(self) -> float:
        return self.migration_end - self.migration_start

    @property
    def recovered(self) -> bool:
        """The last 5 whole seconds completed at least 80 % of the target rate."""
        tail = self.per_second()[:-1][-5:]
        return len(tail) == 5 and sum(tail) >= 0.8 * self.rate * 5


# -- load --------------------------------------------------------------------------------


async def _request(dsn: str, i: int, run: Run, cfg: ReplaySettings) -> None:
    for _attempt in range(cfg.client_retries + 1):
        try:
            async with asyncio.timeout(cfg.client_timeout_s):
                conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                try:
                    if i % 2:
                        await conn.execute(
                            "SELECT id, amount_cents, status FROM invoices WHERE id = %s",
                            (1 + (i * 7919) % 1_000_000,),
                        )
                    else:
                        await conn.execute(
                            "INSERT INTO invoices (payment_account_id, amount_cents) "
                            "VALUES (%s, %s)",
                            (1 + i % ACCOUNTS, i % 100_000),
                        )
                finally:
                    await conn.close()
            run.completions.append(time.monotonic())
            return
        except (TimeoutError, psycopg.Error):
            await asyncio.sleep(0.1 + random.random() * 0.2)
    run.errors += 1


async def _load(dsn: str, run: Run, stop: threading.Event, cfg: ReplaySettings) -> None:
    tasks: set[asyncio.Task[None]] = set()
    i = 0
    start = time.monotonic()
    while not stop.is_set() and time.monotonic() - start < cfg.run_limit_s:
        delay = start + i / cfg.rate_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(_request(dsn, i, run, cfg))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.wait(tasks, timeout=cfg.client_timeout_s * (cfg.client_retries + 2))


def _sampler(dsn: str, run: Run, stop: threading.Event) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        while not stop.wait(0.1):
            row = c.execute(
                "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
                "count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity"
            ).fetchone()
            assert row is not None
            run.samples.append((time.monotonic(), int(str(row[0])), int(str(row[1]))))


# -- one run -----------------------------------------------------------------------------


def _migrate(
    cluster: Cluster, db: str, migration: Path, tool: str, run: Run, cfg: ReplaySettings
) -> None:
    env = cluster.tool_env()
    if cfg.command:
        fields = {
            "dsn": cluster.dsn(db),
            "url": cluster.url(db),
            "db": db,
            "journal": str(cluster.root / f"{db}.jsonl"),
        }
        cmd = [a.format(**fields) for a in cfg.command]
        env.update({k: v.format(**fields) for k, v in cfg.command_env})
    elif tool == "naive":
        cmd = [str(cluster.installation.tool("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        cmd += ["--single-transaction", "-d", db, "-f", str(migration)]
    else:
        cmd = [sys.executable, "-m", "pgwarden", "apply", str(migration)]
        cmd += ["--database-url", cluster.url(db), "--env", "replay", "--yes", "--rewrite"]
        cmd += ["--restamp"]  # adopt the freshly loaded replay database (it holds tables)
        cmd += ["--log-format", "json", "--journal-file", str(cluster.root / f"{db}.jsonl")]
    run.migration_start = time.monotonic()
    p = subprocess.run(
        cmd, env=env, cwd=cfg.command_cwd, capture_output=True, text=True, check=False
    )
    run.migration_end = time.monotonic()
    run.migration_rc = p.returncode
    run.output = (p.stdout + p.stderr)[-20000:]


def _report(dsn: str, ready: threading.Event, hold_s: float) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET application_name = 'monthly-report'")
        with c.transaction():
            c.execute("SELECT count(*) FROM invoices WHERE id < 1000")
            ready.set()
            c.execute("SELECT pg_sleep(%s)", (hold_s,))


def run_one(
    cluster: Cluster,
    template: str,
    scenario: str,
    tool: str,
    migration: Path,
    cfg: ReplaySettings | None = None,
) -> Run:
    """Copy `template`, put it under load, run the migration with `tool`, measure."""
    cfg = cfg or ReplaySettings()
    db = f"{scenario}_{tool}"
    admin = cluster.dsn()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))
        c.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(db), sql.Identifier(template)
            )
        )
    dsn = cluster.dsn(db)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("VACUUM ANALYZE invoices")  # warm the copy's cache and statistics
    app_dsn = cluster.dsn(db, user="app") + f" application_name={APP} connect_timeout=5"
    run = Run(scenario, tool, cfg.rate_per_s)
    stop = threading.Event()
    run.t0 = time.monotonic()
    sampler = threading.Thread(target=_sampler, args=(dsn, run, stop), daemon=True)
    sampler.start()
    loader = threading.Thread(
        target=lambda: asyncio.run(_load(app_dsn, run, stop, cfg)), daemon=True
    )
    loader.start()
    try:
        time.sleep(cfg.warmup_s)
        report = None
        if scenario == "b":
            ready = threading.Event()
            report = threading.Thread(
                target=_report, args=(dsn, ready, cfg.report_hold_s), daemon=True
            )
            report.start()
            ready.wait(10)
            time.sleep(min(2.0, cfg.report_hold_s / 4))
        _migrate(cluster, db, migration, tool, run, cfg)
        if report is not None:
            report.join(cfg.report_hold_s + 10)
        time.sleep(cfg.cooldown_s)
    finally:
        stop.set()
        loader.join(cfg.client_timeout_s * (cfg.client_retries + 3))
        sampler.join(5)
    with psycopg.connect(dsn, autocommit=True) as c:
        if cfg.constraint is None:
            row = c.execute(
                "SELECT bool_and(convalidated) FROM pg_constraint "
                "WHERE conrelid = 'invoices'::regclass AND contype = 'f'"
            ).fetchone()
        else:
            row = c.execute(
                "SELECT convalidated FROM pg_constraint WHERE conname = %s", (cfg.constraint,)
            ).fetchone()
        run.constraint_valid = bool(row and row[0])
        if cfg.check_sql:
            run.check = list(c.execute(cfg.check_sql.encode()).fetchall())
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid()",
            (db,),
        )
        with contextlib.suppress(psycopg.Error):
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))
    return run


def load_templates(cluster: Cluster, rows: int, *, scenario_a: bool = True) -> None:
    """Template databases: `tpl_b` (the incident's schema), `tpl_a` (FK column unindexed).

    Scenario (a) drops the FK column's index so that validation is a full scan plus a
    hash anti-join of invoices: honestly slower than the indexed case.
    """
    with psycopg.connect(cluster.dsn(), autocommit=True) as c:
        c.execute("CREATE DATABASE tpl_b")
    with psycopg.connect(cluster.dsn("tpl_b"), autocommit=True) as c:
        create_sample_schema(c, invoices_rows=rows, accounts_rows=ACCOUNTS)
        c.execute("CREATE ROLE app LOGIN")
        c.execute("GRANT SELECT, INSERT ON invoices, payment_accounts TO app")
    if scenario_a:
        with psycopg.connect(cluster.dsn(), autocommit=True) as c:
            c.execute("CREATE DATABASE tpl_a TEMPLATE tpl_b")
        with psycopg.connect(cluster.dsn("tpl_a"), autocommit=True) as c:
            c.execute("DROP INDEX invoices_payment_account_id_idx")
