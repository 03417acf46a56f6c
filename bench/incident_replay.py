"""Replay the Sendcloud incident: naive `psql` vs `pgwarden apply`, under API-like load.

A throwaway cluster holds `payment_accounts` (50k rows) and `invoices` (--rows,
default 5M). An asyncio load generator imitates the API: an open-loop fixed rate
(--rate, default 50 req/s) of point reads and inserts on `invoices`, a new
connection per request, a 5 s client timeout and up to 3 client retries, as in
the incident. Each run gets a fresh copy of the loaded database (CREATE DATABASE
... TEMPLATE), and the migration is `examples/incident/001_recreate_invoice_fk.sql`
(drop and re-add the invoices -> payment_accounts foreign key):

- naive:    psql --single-transaction -f FILE (what a migration runner does)
- pgwarden: pgwarden apply FILE --rewrite --env bench --yes

Scenarios:
  (a) recreate the foreign key under load. To make validation honestly slower than
      DESIGN.md's "under a second at 5M rows", the FK column's index is dropped
      first, so validation is a full scan + hash anti-join of invoices.
  (b) a 30 s report transaction holds ACCESS SHARE on invoices when the DDL
      arrives (the lock-queue pile-up).

Per run: seconds of stall (1-s buckets after the migration starts with fewer than
50 % of the target rate completed), peak sessions waiting on locks, peak
connections, failed requests (after retries), migration duration, whether the
constraint is valid, and whether throughput recovered (last 5 s >= 80 %).
Writes a PNG plot (matplotlib) next to --plot.

    .venv/bin/python bench/incident_replay.py                     # ~6 minutes
    .venv/bin/python bench/incident_replay.py --rows 1000000      # quick

Load only ever targets the cluster's private unix socket and is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pgwarden.demo import create_sample_schema  # noqa: E402
from pgwarden.pg.cluster import Cluster  # noqa: E402

MIGRATION = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"
PGWARDEN = ROOT / ".venv" / "bin" / "pgwarden"
APP = "api"
CLIENT_TIMEOUT_S = 5.0
CLIENT_RETRIES = 3
WARMUP_S = 5.0
COOLDOWN_S = 10.0
REPORT_S = 30.0
RUN_LIMIT_S = 240.0


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

    def per_second(self) -> list[int]:
        end = max([self.migration_end, *self.completions], default=self.t0) - self.t0
        buckets = [0] * (int(end) + 1)
        for c in self.completions:
            buckets[int(c - self.t0)] += 1
        return buckets

    @property
    def stall_s(self) -> int:
        b = self.per_second()
        start = int(self.migration_start - self.t0)
        # the last bucket may be partial: only whole seconds count
        return sum(1 for n in b[start:-1] if n < 0.5 * self.rate)

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
        b = self.per_second()[:-1]
        tail = b[-5:]
        return len(tail) == 5 and sum(tail) >= 0.8 * self.rate * 5


# -- load --------------------------------------------------------------------------------


async def _request(dsn: str, i: int, accounts: int, run: Run) -> None:
    for _attempt in range(CLIENT_RETRIES + 1):
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT_S):
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
                            (1 + i % accounts, i % 100_000),
                        )
                finally:
                    await conn.close()
            run.completions.append(time.monotonic())
            return
        except (TimeoutError, psycopg.Error):
            await asyncio.sleep(0.1 + random.random() * 0.2)
    run.errors += 1


async def _load(dsn: str, rate: float, accounts: int, run: Run, stop: threading.Event) -> None:
    tasks: set[asyncio.Task[None]] = set()
    i = 0
    start = time.monotonic()
    while not stop.is_set() and time.monotonic() - start < RUN_LIMIT_S:
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(_request(dsn, i, accounts, run))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.wait(tasks, timeout=CLIENT_TIMEOUT_S * (CLIENT_RETRIES + 2))


def _sampler(dsn: str, run: Run, stop: threading.Event) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        while not stop.wait(0.1):
            row = c.execute(
                "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
                "count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity"
            ).fetchone()
            assert row is not None
            run.samples.append((time.monotonic(), int(row[0]), int(row[1])))


# -- one run -----------------------------------------------------------------------------


def _migrate(cluster: Cluster, db: str, tool: str, run: Run) -> None:
    if tool == "naive":
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", db]
        cmd += ["-f", str(MIGRATION)]
    else:
        cmd = [str(PGWARDEN), "apply", str(MIGRATION), "--database-url", cluster.url(db)]
        cmd += ["--env", "bench", "--yes", "--rewrite", "--log-format", "json"]
        cmd += ["--journal-file", str(Path(cluster.root) / "journal.jsonl")]
    run.migration_start = time.monotonic()
    p = subprocess.run(cmd, env=cluster.tool_env(), capture_output=True, text=True, check=False)
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


def run_one(cluster: Cluster, template: str, scenario: str, tool: str, rate: float) -> Run:
    db = f"{scenario}_{tool}"
    admin = cluster.dsn()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {db}")
        c.execute(f"CREATE DATABASE {db} TEMPLATE {template}")
    dsn = cluster.dsn(db)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("VACUUM ANALYZE invoices")  # warm the copy's cache and statistics
    app_dsn = cluster.dsn(db, user="app") + f" application_name={APP} connect_timeout=5"
    run = Run(scenario, tool, rate)
    stop = threading.Event()
    run.t0 = time.monotonic()
    sampler = threading.Thread(target=_sampler, args=(dsn, run, stop), daemon=True)
    sampler.start()
    loader = threading.Thread(
        target=lambda: asyncio.run(_load(app_dsn, rate, 50_000, run, stop)), daemon=True
    )
    loader.start()
    time.sleep(WARMUP_S)
    report = None
    if scenario == "b":
        ready = threading.Event()
        report = threading.Thread(target=_report, args=(dsn, ready, REPORT_S), daemon=True)
        report.start()
        ready.wait(10)
        time.sleep(2.0)
    _migrate(cluster, db, tool, run)
    if report is not None:
        report.join(REPORT_S + 10)
    time.sleep(COOLDOWN_S)
    stop.set()
    loader.join(CLIENT_TIMEOUT_S * (CLIENT_RETRIES + 3))
    sampler.join(5)
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT convalidated FROM pg_constraint "
            "WHERE conname = 'invoices_payment_account_id_fkey'"
        ).fetchone()
        run.constraint_valid = bool(row and row[0])
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid()",
            (db,),
        )
        c.execute(f"DROP DATABASE IF EXISTS {db}")
    return run


# -- main --------------------------------------------------------------------------------


def _load_template(cluster: Cluster, rows: int) -> None:
    t = time.monotonic()
    for name, drop_fk_index in (("tpl_a", True), ("tpl_b", False)):
        with psycopg.connect(cluster.dsn(), autocommit=True) as c:
            if name == "tpl_b":
                c.execute("CREATE DATABASE tpl_b TEMPLATE tpl_a")
            else:
                c.execute("CREATE DATABASE tpl_a")
        with psycopg.connect(cluster.dsn(name), autocommit=True) as c:
            if name == "tpl_a":
                create_sample_schema(c, invoices_rows=rows)
                c.execute("CREATE ROLE app LOGIN")
                c.execute("GRANT SELECT, INSERT ON invoices, payment_accounts TO app")
            if drop_fk_index:
                c.execute("DROP INDEX invoices_payment_account_id_idx")
            elif name == "tpl_b":
                c.execute(
                    "CREATE INDEX invoices_payment_account_id_idx ON invoices (payment_account_id)"
                )
    print(f"loaded {rows:,} invoices in {time.monotonic() - t:.0f} s", flush=True)


def _plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharey="row")
    for col, scenario in enumerate(("a", "b")):
        ax, ax2 = axes[0][col], axes[1][col]
        for run in (r for r in runs if r.scenario == scenario):
            b = run.per_second()[:-1]
            ax.plot(range(len(b)), b, label=f"{run.tool} (stall {run.stall_s} s)")
            xs = [s[0] - run.t0 for s in run.samples]
            ax2.plot(xs, [s[1] for s in run.samples], label=f"{run.tool} connections")
            ax2.plot(xs, [s[2] for s in run.samples], "--", label=f"{run.tool} lock waits")
            ax.axvline(run.migration_start - run.t0, color="grey", lw=0.5)
        ax.axhline(runs[0].rate * 0.5, color="red", lw=0.5, ls=":")
        ax.set_title(f"scenario ({scenario})")
        ax.set_ylabel("requests completed / s")
        ax2.set_ylabel("sessions")
        ax2.set_xlabel("seconds")
        ax.legend(fontsize=8)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--scenarios", default="a,b")
    ap.add_argument("--plot", default="bench/incident_replay.png")
    ap.add_argument("--tools", default="naive,pgwarden")
    ap.add_argument("--verbose", action="store_true", help="print each migration's output")
    args = ap.parse_args()
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)  # cancel failures under pile-up
    runs: list[Run] = []
    with Cluster.start() as cluster:
        _load_template(cluster, args.rows)
        for scenario in args.scenarios.split(","):
            for tool in args.tools.split(","):
                tpl = "tpl_a" if scenario == "a" else "tpl_b"
                run = run_one(cluster, tpl, scenario, tool, args.rate)
                runs.append(run)
                print(
                    f"  ({scenario}) {tool:<8} stall {run.stall_s:>3} s  "
                    f"peak lock waits {run.peak_lock_waits:>4}  "
                    f"peak connections {run.peak_connections:>4}  errors {run.errors:>4}  "
                    f"migration {run.duration_s:6.1f} s (exit {run.migration_rc})  "
                    f"constraint valid {'yes' if run.constraint_valid else 'NO'}  "
                    f"recovered {'yes' if run.recovered else 'NO'}",
                    flush=True,
                )
                if run.migration_rc != 0 or args.verbose:
                    print(run.output)
                    lt = [(round(t - run.t0, 1), n) for t, _, n in run.samples if n > 5]
                    print("lock waits > 5 at:", lt[:40])
    print()
    print(
        f"{'scenario':<9}{'tool':<10}{'stall s':>8}{'lock waits':>11}{'conns':>7}"
        f"{'errors':>7}{'migration s':>12}{'valid':>6}{'recovered':>10}"
    )
    for r in runs:
        print(
            f"{r.scenario:<9}{r.tool:<10}{r.stall_s:>8}{r.peak_lock_waits:>11}"
            f"{r.peak_connections:>7}{r.errors:>7}{r.duration_s:>12.1f}"
            f"{'yes' if r.constraint_valid else 'NO':>6}{'yes' if r.recovered else 'NO':>10}"
        )
    for scenario in args.scenarios.split(","):
        pair = [r for r in runs if r.scenario == scenario]
        if len(pair) < 2:
            continue
        naive = next(r for r in runs if r.scenario == scenario and r.tool == "naive")
        ours = next(r for r in runs if r.scenario == scenario and r.tool == "pgwarden")
        ratio = ours.stall_s / naive.stall_s if naive.stall_s else float("nan")
        print(f"({scenario}) pgwarden stall / naive stall = {ratio:.0%} (target <= 10 %)")
    try:
        _plot(runs, Path(args.plot))
        print(f"plot: {args.plot}")
    except ImportError:
        print("plot skipped: matplotlib is not installed")


if __name__ == "__main__":
    main()
