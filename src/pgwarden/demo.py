"""`pgwarden demo`: the main job on an embedded PostgreSQL.

Starts a throwaway cluster, builds the incident's tables (`payment_accounts`,
a sizeable `invoices`), takes a stats snapshot under light traffic, and shows
what each example migration would do to those tables.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pgwarden import commands
from pgwarden.pg.cluster import Cluster
from pgwarden.report.lint_text import render_lint

__all__ = ["SCHEMA_SQL", "create_sample_schema", "examples_dir", "light_traffic", "run_demo"]

SCHEMA_SQL = """
CREATE TABLE payment_accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner text NOT NULL,
    iban text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_account_id bigint NOT NULL REFERENCES payment_accounts (id),
    amount_cents integer NOT NULL,
    status text DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_payment_account_id_idx ON invoices (payment_account_id);
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO settings VALUES ('currency', 'EUR'), ('vat', '21');
"""


def create_sample_schema(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    invoices_rows: int,
    accounts_rows: int = 50_000,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 250_000,
) -> None:
    """Create and fill the incident's tables (autocommit connection)."""
    conn.execute(SCHEMA_SQL)
    conn.execute(
        "INSERT INTO payment_accounts (owner, iban) "
        "SELECT 'owner ' || g, 'NL' || lpad(g::text, 16, '0') FROM generate_series(1, %s) g",
        (accounts_rows,),
    )
    done = 0
    while done < invoices_rows:
        n = min(chunk, invoices_rows - done)
        conn.execute(
            "INSERT INTO invoices (payment_account_id, amount_cents, status, created_at) "
            "SELECT 1 + (g * 7919) %% %s, (g * 31) %% 100000, "
            "CASE WHEN g %% 10 = 0 THEN 'paid' ELSE 'open' END, "
            "now() - (g || ' seconds')::interval FROM generate_series(%s::bigint, %s::bigint) g",
            (accounts_rows, done + 1, done + n),
        )
        done += n
        if on_progress is not None:
            on_progress(n)
    conn.execute("VACUUM ANALYZE payment_accounts, invoices, settings")


def light_traffic(dsn: str, stop: threading.Event, accounts_rows: int) -> None:
    """Point reads and inserts on invoices until `stop` is set."""
    with psycopg.connect(dsn, autocommit=True) as c:
        i = 0
        while not stop.is_set():
            i += 1
            c.execute("SELECT * FROM invoices WHERE id = %s", (i * 37 % 1000 + 1,))
            c.execute(
                "SELECT id, amount_cents FROM invoices WHERE payment_account_id = %s "
                "ORDER BY id DESC LIMIT 20",
                (i * 13 % accounts_rows + 1,),
            )
            c.execute(
                "INSERT INTO invoices (payment_account_id, amount_cents) VALUES (%s, %s)",
                (i % accounts_rows + 1, i),
            )
            time.sleep(0.005)


def examples_dir() -> Path:
    """The examples/ folder of a source checkout, or the copy shipped in the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "examples", here.parent / "_examples"):
        if candidate.is_dir():
            return candidate
    return Path("examples")


def run_demo(out: Console, err: Console, *, invoices_rows: int = 1_000_000) -> None:
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
    out.print(f"\nDone in {time.perf_counter() - t0:.1f} s; the throwaway cluster is gone.")
