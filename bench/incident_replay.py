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
import logging
import time
from pathlib import Path

from pgwarden.pg.cluster import Cluster
from pgwarden.replay import ReplaySettings, Run, load_templates, run_one

ROOT = Path(__file__).resolve().parents[1]
MIGRATION = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"


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
    cfg = ReplaySettings(rate_per_s=args.rate)
    with Cluster.start() as cluster:
        t = time.monotonic()
        load_templates(cluster, args.rows, scenario_a="a" in args.scenarios.split(","))
        print(f"loaded {args.rows:,} invoices in {time.monotonic() - t:.0f} s", flush=True)
        for scenario in args.scenarios.split(","):
            for tool in args.tools.split(","):
                tpl = "tpl_a" if scenario == "a" else "tpl_b"
                run = run_one(cluster, tpl, scenario, tool, MIGRATION, cfg)
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
