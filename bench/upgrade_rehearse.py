"""How long `pgwarden upgrade rehearse` and `upgrade check` take, and what the pg_upgrade
route's downtime is in copy and link mode, for a source of N rows.

A PostgreSQL 15 source (system) with `orders` (N rows, a partial index on the pending
1 %) and `customers` (N/10 rows) is rehearsed to 18 (wheel) in copy and link mode, and
to 17 in link mode; prints each phase, the downtime (pg_upgrade + restart), whether
statistics were carried, the `pending` query before / right after / after analyze, and
`upgrade check`'s time with a schema-only copy.

Usage: python bench/upgrade_rehearse.py [rows] [target majors, e.g. 18,17]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psycopg

from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.upgrade.check_run import CheckOptions, check_upgrade
from pgwarden.upgrade.rehearse import RehearseUpgradeOptions, rehearse_upgrade

WORKLOAD = """\
-- name: pending
SELECT * FROM orders WHERE status <> 'done';
-- name: customer_orders
-- params: [4242]
SELECT o.id, o.total FROM orders o WHERE o.customer_id = $1 ORDER BY o.id DESC LIMIT 20;
"""


def _load(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL)")
        c.execute(
            "INSERT INTO customers SELECT g, 'u' || g || '@example.com' "
            "FROM generate_series(1, %s) g",
            (max(1, rows // 10),),
        )
        c.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL "
            "REFERENCES customers, status text NOT NULL, total numeric NOT NULL, note text)"
        )
        c.execute(
            "INSERT INTO orders SELECT g, 1 + g %% %s, "
            "CASE WHEN g %% 100 = 0 THEN 'open' ELSE 'done' END, g, repeat('x', 60) "
            "FROM generate_series(1, %s) g",
            (max(1, rows // 10), rows),
        )
        c.execute("CREATE INDEX orders_customer ON orders (customer_id)")
        c.execute("CREATE INDEX orders_pending ON orders (id) WHERE status <> 'done'")
        c.execute("ANALYZE")
        size = c.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    print(f"source: PostgreSQL 15, {rows:,} orders, database {size[0] if size else '?'}")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    targets = [int(t) for t in (sys.argv[2] if len(sys.argv) > 2 else "18,17").split(",")]
    workload = Path(tempfile.mkdtemp(prefix="pgwarden-bench-")) / "workload.sql"
    workload.write_text(WORKLOAD)
    with Cluster.start(find_installation(15)) as src:
        dsn = src.create_database("shop")
        t0 = time.monotonic()
        _load(dsn, rows)
        print(f"load: {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        report = check_upgrade(dsn, CheckOptions(targets[0]))
        print(
            f"\nupgrade check --to {targets[0]}: {time.monotonic() - t0:.1f} s "
            f"({report.verdicts()}, pg_upgrade --check {report.pg_upgrade.seconds:.1f} s)"
            if report.pg_upgrade
            else ""
        )
        runs = [(targets[0], "copy"), (targets[0], "link")] + [(t, "link") for t in targets[1:]]
        for target, mode in runs:
            r = rehearse_upgrade(
                dsn,
                RehearseUpgradeOptions(target, mode=mode, copy="dump", workload_file=str(workload)),
            )
            print(f"\nrehearse --to {target} --mode {mode}: {r.status}")
            for p in r.phases:
                print(f"  {p.name:<24} {p.seconds:8.2f} s")
            print(f"  {'total':<24} {r.total_s:8.2f} s")
            print(f"  downtime (pg_upgrade + restart): {r.downtime_s or 0:.2f} s")
            print(f"  statistics carried by pg_upgrade: {r.stats_carried}")
            for q, b, ra, aa in zip(
                r.queries, r.before, r.right_after, r.after_analyze, strict=False
            ):
                print(
                    f"  {q.name:<16} before {b.median_ms or 0:8.2f} ms   right after "
                    f"{ra.median_ms or 0:8.2f} ms   after analyze {aa.median_ms or 0:8.2f} ms"
                )
            for g in r.regressions:
                print(f"  regression {g.query} {g.when}: {'; '.join(g.changes) or 'slower'}")


if __name__ == "__main__":
    main()
