"""Throughput of `pgwarden backup create` / `verify` against plain pg_dump / pg_restore.

Generates a database of about --gb GB on disk in a throwaway cluster, then in
the same run times, on the same data and with the same --jobs:
  plain pg_dump -Fd -j N             vs  pgwarden backup create -j N
  plain pg_restore -j N (fresh db)   vs  pgwarden backup verify -j N
and the per-table checksums alone. MB/s is the database size on disk divided by
wall time. Run: .venv/bin/python bench/backup.py [--gb 1.0] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from pgwarden.backup import content
from pgwarden.pg.cluster import Cluster

ROW_BYTES = 150  # on-disk bytes per generated row, heap + index, measured


def _timed(args: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.monotonic()
    r = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"{args[0]} failed: {r.stderr[-2000:]}")
    return time.monotonic() - t0


def _generate(cluster: Cluster, gb: float) -> tuple[str, int]:
    dsn = cluster.create_database("bench")
    rows = int(gb * 1024**3 / ROW_BYTES)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, account int NOT NULL, kind text,"
            " payload text, amount numeric(12, 2), at timestamptz NOT NULL)"
        )
        step = 1_000_000
        for lo in range(0, rows, step):
            conn.execute(
                "INSERT INTO events SELECT g, g %% 5000, 'kind' || (g %% 17), md5(g::text) ||"
                " md5((g * 7)::text), (g %% 100000) / 100.0,"
                " timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'"
                " FROM generate_series(%s::bigint, %s::bigint) g",
                (lo + 1, min(lo + step, rows)),
            )
        conn.execute(
            "CREATE TABLE accounts AS SELECT g AS id, 'account ' || g AS name"
            " FROM generate_series(1, 5000) g"
        )
        conn.execute("ALTER TABLE accounts ADD PRIMARY KEY (id)")
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return dsn, int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgwarden-bench-backup-"))
    pgwarden = [sys.executable, "-m", "pgwarden", "backup"]
    try:
        with Cluster.start() as cluster:
            print(f"server: {cluster.installation}")
            t0 = time.monotonic()
            dsn, size = _generate(cluster, opts.gb)
            mb = size / 1024**2
            print(f"generated {mb:.0f} MB on disk in {time.monotonic() - t0:.0f} s")
            inst, env, j = cluster.installation, cluster.tool_env(), f"--jobs={opts.jobs}"

            plain_dump = _timed(
                [str(inst.tool("pg_dump")), "-Fd", j, "-f", str(work / "plain"), "-d", "bench"],
                env,
            )
            cat = work / "catalogue"
            create = _timed(
                [*pgwarden, "create", "--database-url", dsn, "--catalogue", str(cat), j]
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                content.pin_output_settings(conn)
                t0 = time.monotonic()
                content.checksum_all(conn, content.list_tables(conn))
                checksums = time.monotonic() - t0

            with Cluster.start(inst) as scratch:
                scratch.create_database("restored", template="template0")
                plain_restore = _timed(
                    [str(inst.tool("pg_restore")), j, "-d", "restored", str(work / "plain")],
                    scratch.tool_env(),
                )
            verify = _timed([*pgwarden, "verify", "--latest", "--catalogue", str(cat), j])
            dump_mb = sum(f.stat().st_size for f in (work / "plain").iterdir()) / 1024**2

        print(f"database {mb:.0f} MB, dump {dump_mb:.0f} MB, jobs {opts.jobs}")
        rows = [
            ("plain pg_dump -Fd", plain_dump),
            ("pgwarden backup create", create),
            ("  checksums alone", checksums),
            ("plain pg_restore", plain_restore),
            ("pgwarden backup verify", verify),
        ]
        for name, secs in rows:
            print(f"{name:<26} {secs:7.1f} s  {mb / secs:7.1f} MB/s")
        print(f"create / pg_dump  time ratio {create / plain_dump:.2f}")
        print(f"verify / pg_restore time ratio {verify / plain_restore:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
