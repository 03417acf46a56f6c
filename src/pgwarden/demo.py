"""`pgwarden demo`: the main job on an embedded PostgreSQL.

Starts a throwaway cluster, builds the incident's tables (`payment_accounts`,
a sizeable `invoices`), takes a stats snapshot under light traffic, and shows
what each example migration would do to those tables.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pgwarden import commands
from pgwarden.analysis.context import Snapshot
from pgwarden.pg.cluster import Cluster
from pgwarden.replay import ReplaySettings, run_one
from pgwarden.report.lint_text import render_lint
from pgwarden.sample import SCHEMA_SQL, create_sample_schema, light_traffic

__all__ = ["SCHEMA_SQL", "create_sample_schema", "examples_dir", "light_traffic", "run_demo"]


def examples_dir() -> Path:
    """The examples/ folder of a source checkout, or the copy shipped in the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "examples", here.parent / "_examples"):
        if candidate.is_dir():
            return candidate
    return Path("examples")


def _rehearse(
    out: Console, err: Console, cluster: Cluster, migration: Path, snap: Snapshot, rows: int
) -> None:
    """Rehearse the incident migration on a scratch copy under probe traffic."""
    from pgwarden.commands import load_plan
    from pgwarden.rehearse.api import RehearseOptions, rehearse
    from pgwarden.rehearse.report_text import render_text

    report = Path.cwd() / "pgwarden-rehearsal.html"
    out.print(f"\n[bold]5.[/] Rehearsing {migration.name} on a scratch copy under probe traffic:")
    with err.status("   rehearsing ..."):
        result = rehearse(
            load_plan([migration], file_transaction=True),
            RehearseOptions(
                database_url=cluster.dsn(),  # a scratch database on the demo's cluster
                schema_sql=SCHEMA_SQL,
                snapshot=snap,
                rows_cap=rows,
                report_path=report,
                write_record=False,
            ),
        )
    render_text(out, result)


def _replay(out: Console, err: Console, cluster: Cluster, migration: Path) -> None:
    """Apply the incident migration under load while a report holds a lock: naive vs pgwarden."""
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)  # cancelled clients are expected
    cfg = ReplaySettings(warmup_s=3.0, cooldown_s=4.0, report_hold_s=10.0)
    with psycopg.connect(cluster.dsn("demo"), autocommit=True) as conn:
        conn.execute("CREATE ROLE app LOGIN")
        conn.execute("GRANT SELECT, INSERT ON invoices, payment_accounts TO app")
    out.print(
        f"\n[bold]6.[/] Applying {migration.name} under {cfg.rate_per_s:.0f} requests/s while a "
        f"{cfg.report_hold_s:.0f} s report transaction holds a lock on invoices:"
    )
    runs = {}
    for tool in ("naive", "pgwarden"):
        with err.status(f"   {tool}: running ..."):
            runs[tool] = run_one(cluster, "demo", "b", tool, migration, cfg)
        r = runs[tool]
        how = "psql --single-transaction" if tool == "naive" else "pgwarden apply --rewrite"
        out.print(
            f"   {how:<26} API stalled {r.stall_s:>2} s, peak {r.peak_lock_waits:>3} sessions "
            f"waiting on locks, peak {r.peak_connections:>3} connections, {r.errors} failed "
            f"requests; migration {r.duration_s:.1f} s, constraint "
            f"{'valid' if r.constraint_valid else 'NOT valid'}"
        )
    naive, ours = runs["naive"], runs["pgwarden"]
    if naive.stall_s:
        out.print(f"   pgwarden's stall is {ours.stall_s / naive.stall_s:.0%} of the naive run's.")


def run_demo(
    out: Console, err: Console, *, invoices_rows: int = 1_000_000, replay: bool = True
) -> None:
    """Run the demo, printing as it goes."""
    accounts = 50_000
    t0 = time.perf_counter()
    with Cluster.start() as cluster:
        out.print(
            f"[bold]1.[/] Started a throwaway {cluster.installation} "
            f"in {time.perf_counter() - t0:.1f} s",
        )
        dsn = cluster.create_database("demo")
        with (
            psycopg.connect(dsn, autocommit=True) as conn,
            Progress(
                TextColumn("   loading invoices"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} rows"),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("load", total=invoices_rows)
            t1 = time.perf_counter()
            create_sample_schema(
                conn,
                invoices_rows=invoices_rows,
                accounts_rows=accounts,
                on_progress=lambda n: progress.advance(task, n),
            )
        out.print(
            f"[bold]2.[/] Built payment_accounts ({accounts:,} rows) and invoices "
            f"({invoices_rows:,} rows) in {time.perf_counter() - t1:.1f} s"
        )
        stop = threading.Event()
        traffic = threading.Thread(target=light_traffic, args=(dsn, stop, accounts), daemon=True)
        traffic.start()
        try:
            with tempfile.TemporaryDirectory(prefix="pgwarden-demo-") as tmp:
                stats_path = Path(tmp) / "stats.json"
                snap = commands.stats_dump(dsn, stats_path, sample_s=2.0)
        finally:
            stop.set()
            traffic.join(timeout=5)
        inv = snap.table("invoices")
        rate = f", {inv.writes_per_s:.0f} writes/s" if inv and inv.writes_per_s else ""
        out.print(
            f"[bold]3.[/] Took a stats snapshot under light traffic "
            f"(invoices: {inv.total_bytes / 1048576 if inv else 0:.0f} MB{rate})"
        )
        ctx = commands.Context(snap, snap.catalog, snap.server_major, "snapshot")
        folder = examples_dir()
        out.print(f"[bold]4.[/] Linting the example migrations in {folder} against them:\n")
        plan, result = commands.lint([folder], context=ctx)
        render_lint(out, plan, result)
        _rehearse(
            out,
            err,
            cluster,
            folder / "incident" / "001_recreate_invoice_fk.sql",
            snap,
            invoices_rows,
        )
        if replay:
            _replay(out, err, cluster, folder / "incident" / "001_recreate_invoice_fk.sql")
    out.print(f"\nDone in {time.perf_counter() - t0:.1f} s; the throwaway cluster is gone.")
