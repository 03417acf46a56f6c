"""Time and peak memory of `pgwarden rehearse` on the incident migration, and tracing overhead.

Part 1, per size (1M and 5M `invoices` rows, 50k `payment_accounts`), each in a
fresh subprocess so that peak RSS is its own: the full rehearsal (embedded
cluster, schema, synthetic rows, probes, trace, report) of
examples/incident/001_recreate_invoice_fk.sql with a stats snapshot saying
production has exactly that many rows. Prints wall time, load time, the
traced step times, pgwarden's peak RSS and the server processes' peak RSS.

Part 2, on one cluster with --overhead-rows invoices: the same two statements
(drop + re-add of the FK, which leaves the schema as it was, so runs repeat)
run `--repeat` times each way, alternating: psql -1 -f (wall time of the
process), plain psycopg in one transaction, pgwarden's tracer without probes,
and the tracer with probe traffic. Ratios are against psql; medians.

Run: .venv/bin/python bench/rehearse.py [--sizes 1000000,5000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
INCIDENT = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"
ACCOUNTS = 50_000


def _snapshot(invoices: int) -> object:
    from pgwarden.analysis.context import Snapshot
    from pgwarden.pg.stats import Stats, TableStats

    tables = {
        "public.invoices": TableStats("public.invoices", invoices, 0, 0, 0),
        "public.payment_accounts": TableStats("public.payment_accounts", ACCOUNTS, 0, 0, 0),
        "public.settings": TableStats("public.settings", 2, 0, 0, 0),
    }
    return Snapshot(Stats("2026-01-01T00:00:00+00:00", 150000, "bench", 1.0, tables), None)


def one(invoices: int) -> dict[str, object]:
    """One full rehearsal at `invoices` rows (run in its own process)."""
    from pgwarden.analysis.context import Snapshot
    from pgwarden.commands import load_plan
    from pgwarden.demo import SCHEMA_SQL
    from pgwarden.rehearse.api import RehearseOptions, rehearse

    snap = _snapshot(invoices)
    assert isinstance(snap, Snapshot)
    with tempfile.TemporaryDirectory(prefix="pgwarden-bench-") as tmp:
        t0 = time.perf_counter()
        result = rehearse(
            load_plan([INCIDENT], file_transaction=True),
            RehearseOptions(
                schema_sql=SCHEMA_SQL,
                snapshot=snap,
                rows_cap=invoices,
                record_dir=Path(tmp),
                report_path=Path(tmp) / "report.html",
            ),
        )
        wall = time.perf_counter() - t0
    inv_writes = [
        max((b.writes_blocked_s for b in s.blocking if b.table == "invoices"), default=0.0)
        for s in result.steps
    ]
    return {
        "invoices": invoices,
        "wall_s": round(wall, 2),
        "load_s": round(result.load_s, 2),
        "steps_statement_s": [round(s.statement_s, 3) for s in result.steps],
        "invoices_writes_blocked_s": [round(x, 3) for x in inv_writes],
        "findings": [f.code for f in result.findings],
        "pgwarden_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "server_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def _plain(dsn: str, statements: list[str]) -> float:
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        for s in statements:
            conn.execute(s.encode())
        conn.commit()
        return time.perf_counter() - t0


def overhead(rows: int, repeat: int) -> dict[str, object]:
    """Tracing overhead against psql on one cluster at `rows` invoices."""
    from pgwarden.analysis.catalog import read_catalog
    from pgwarden.analysis.parse import parse
    from pgwarden.demo import create_sample_schema
    from pgwarden.pg.cluster import Cluster
    from pgwarden.plan import SourceText, build_plan
    from pgwarden.rehearse.datagen import read_tables
    from pgwarden.rehearse.probes import ProbeSet
    from pgwarden.rehearse.sampler import LockSampler
    from pgwarden.rehearse.trace import Tracer

    text = INCIDENT.read_text()
    stmts = parse(text, str(INCIDENT))
    times: dict[str, list[float]] = {"psql": [], "psycopg": [], "traced": [], "traced+probes": []}
    with Cluster.start() as cluster:
        dsn = cluster.create_database("bench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_sample_schema(conn, invoices_rows=rows, accounts_rows=ACCOUNTS)
            plan = build_plan(
                [(SourceText(str(INCIDENT), text), stmts)],
                catalog=read_catalog(conn),
                server_version=cluster.installation.major,
                file_transaction=True,
            )
            tables = read_tables(conn)
            for name in tables:
                row = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
                tables[name].rows = int(str(row[0])) if row else 0
        psql = cluster.installation.tool("psql")
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(INCIDENT),
                 "-d", "bench"],
                env=cluster.tool_env(), check=True, capture_output=True,
            )  # fmt: skip
            times["psql"].append(time.perf_counter() - t0)
            times["psycopg"].append(_plain(dsn, [s.text for s in stmts]))
            for label, with_probes in (("traced", False), ("traced+probes", True)):
                t0 = time.perf_counter()
                sampler = LockSampler(dsn, t0)
                probes = ProbeSet(dsn, tables, ["invoices", "payment_accounts"], t0)
                if with_probes:
                    probes.start()
                with (
                    psycopg.connect(dsn, autocommit=True) as runner,
                    psycopg.connect(dsn, autocommit=True) as observer,
                ):
                    sampler.watch(
                        runner.info.backend_pid,
                        [p.pid for p in probes.probes] if with_probes else [],
                    )
                    sampler.start()
                    tracer = Tracer(
                        runner, observer, sampler, probes if with_probes else None, t0,
                        cluster.installation.major,
                    )  # fmt: skip
                    t_run = time.perf_counter()
                    tracer.run(plan)
                    times[label].append(time.perf_counter() - t_run)
                sampler.stop()
                if with_probes:
                    probes.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "invoices": rows,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "ratio_vs_psql": {k: round(v / med["psql"], 2) for k, v in med.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--overhead-rows", type=int, default=1_000_000)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return
    for size in [int(s) for s in args.sizes.split(",") if s]:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"rehearsal at {size:,} rows failed:\n{done.stderr[-3000:]}")
        print("rehearse", done.stdout.strip(), flush=True)
    print("overhead", json.dumps(overhead(args.overhead_rows, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
