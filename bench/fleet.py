"""`pgwarden fleet` at scale: 200 databases, 4 waves, one runner.

Starts throwaway clusters (PostgreSQL 15 twice, and 18 when a wheel has it),
creates --databases copies of a small schema, stamps them as staging, then:
1. rolls a clean plan out (canary 1, 10 %, 50 %, 100 %; parallel 8): wall time,
   per-wave times, peak pgwarden connections (pg_stat_activity sampled every
   20 ms on every cluster) against the bound (max_connections), threads after;
   then `fleet status` over every target, with one table created by hand;
2. rolls a second plan out with rows on one target of wave 3 violating its
   CHECK: the time from that target's failure to the halt (the wave's running
   targets finish their step, no new one starts), and how many were touched.
Prints figures. Run: .venv/bin/python bench/fleet.py [--databases 200] [--parallel 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden import commands
from pgwarden.apply.identity import stamp_database
from pgwarden.errors import PostgresNotFound
from pgwarden.events import Event, FleetHalted, FleetTarget, FleetWave
from pgwarden.fleet.config import FleetConfig, WaveSpec
from pgwarden.fleet.journal import RolloutJournal
from pgwarden.fleet.rollout import RolloutOptions, run_rollout
from pgwarden.fleet.status import fleet_status
from pgwarden.fleet.targets import Target
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, Settings

SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, email text);
INSERT INTO accounts SELECT g, g, 'user' || g || '@example.com' FROM generate_series(1, 200) g;
CREATE INDEX accounts_email_idx ON accounts (email);
"""


def _clusters() -> list[Cluster]:
    out = []
    settings = {"max_connections": "300"}
    for major in (15, 15, 18):
        try:
            inst = find_installation(major)
        except PostgresNotFound:
            continue
        out.append(Cluster.start(inst, settings=settings))
    return out


def _populate(clusters: list[Cluster], n: int, shm: list[Path]) -> list[Target]:
    for c in clusters:
        ts = ""
        if Path("/dev/shm").is_dir():
            where = Path(tempfile.mkdtemp(prefix="pgwarden-fleet-bench-", dir="/dev/shm"))
            run_as = getattr(c, "_run_as", None)
            if run_as:
                os.chown(where, run_as[0], run_as[1])
            shm.append(where)
            with psycopg.connect(c.dsn(), autocommit=True) as k:
                k.execute(
                    sql.SQL("CREATE TABLESPACE mem LOCATION {}").format(sql.Literal(str(where)))
                )
            ts = " TABLESPACE mem"
        with psycopg.connect(c.dsn(), autocommit=True) as k:
            k.execute(sql.SQL("CREATE DATABASE tpl" + ts))
        with psycopg.connect(c.dsn("tpl"), autocommit=True) as k:
            k.execute(SCHEMA)
    targets = []
    for i in range(1, n + 1):
        c = clusters[i % len(clusters)]
        name = f"db{i:04d}"
        with psycopg.connect(c.dsn(), autocommit=True) as k:
            k.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE tpl STRATEGY FILE_COPY").format(
                    sql.Identifier(name)
                )
            )
        dsn = c.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as k:
            stamp_database(k, "staging", protected=False, by="bench")
        targets.append(Target(name, dsn, (("n", str(i)),)))
    return targets


class _Sampler:
    """Peak number of pgwarden sessions over all clusters, sampled every 20 ms."""

    def __init__(self, clusters: list[Cluster]) -> None:
        self.conns = [psycopg.connect(c.dsn(), autocommit=True) for c in clusters]
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        q = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgwarden%'"
        while not self._stop.wait(0.02):
            total = 0
            for c in self.conns:
                row = c.execute(q).fetchone()
                total += int(row[0]) if row else 0
            self.peak = max(self.peak, total)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for c in self.conns:
            c.close()


class _Clock:
    def __init__(self) -> None:
        self.wave_start: dict[int, float] = {}
        self.wave_end: dict[int, float] = {}
        self.failed_at: float | None = None
        self.halted_at: float | None = None
        self.started = 0

    def __call__(self, e: Event) -> None:
        now = time.monotonic()
        if isinstance(e, FleetWave) and e.phase == "started":
            self.wave_start[e.wave] = now
        elif isinstance(e, FleetWave) and e.phase == "done":
            self.wave_end[e.wave] = now
        elif isinstance(e, FleetTarget) and e.state == "running":
            self.started += 1
        elif isinstance(e, FleetTarget) and e.state == "failed" and self.failed_at is None:
            self.failed_at = now
        elif isinstance(e, FleetHalted):
            self.halted_at = now


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--databases", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--max-connections", type=int, default=40)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgwarden-fleet-bench-"))
    shm: list[Path] = []
    clusters = _clusters()
    try:
        t0 = time.monotonic()
        targets = _populate(clusters, args.databases, shm)
        versions = sorted({c.installation.major for c in clusters})
        print(
            f"{len(targets)} databases on {len(clusters)} clusters (PostgreSQL "
            f"{', '.join(map(str, versions))}) created and stamped in "
            f"{time.monotonic() - t0:.1f} s"
        )
        cfg = FleetConfig(
            name="bench",
            order="n",
            parallel=args.parallel,
            max_connections=args.max_connections,
            max_per_server=args.parallel,
            journal_dir=str(work / "journal"),
            waves=(
                WaveSpec("canary", count=1),
                WaveSpec("ten", percent=10),
                WaveSpec("half", percent=50),
                WaveSpec("rest", percent=100),
            ),
        )
        settings = Settings(environments={"staging": Environment("staging", False)})
        opts = RolloutOptions(env="staging")
        (work / "a").mkdir()
        (work / "a" / "001.sql").write_text(
            "ALTER TABLE accounts ADD COLUMN note text;\n"
            "CREATE INDEX CONCURRENTLY accounts_balance_idx ON accounts (balance);\n"
        )
        plan = commands.load_plan([work / "a"], file_transaction=False)
        clock = _Clock()
        threads = threading.active_count()
        with _Sampler(clusters) as sampler:
            t0 = time.monotonic()
            result = run_rollout(plan, cfg, targets, opts, settings=settings, observer=clock)
            wall = time.monotonic() - t0
        assert result.state == "done", result.message
        print(
            f"clean rollout: {len(targets)} targets, 4 waves, parallel {args.parallel}: "
            f"{wall:.1f} s wall ({wall / len(targets) * 1000:.0f} ms per target)"
        )
        for w in sorted(clock.wave_start):
            took = clock.wave_end.get(w, 0) - clock.wave_start[w]
            print(f"  wave {w}: {took:.1f} s")
        at_once = min(args.parallel, args.max_connections // 3)
        print(
            f"peak pgwarden connections: {sampler.peak} (bound: max_connections "
            f"{args.max_connections}; 3 per apply x {at_once} applies at once)"
        )
        print(f"threads before/after: {threads}/{threading.active_count()}")
        with psycopg.connect(targets[7].dsn, autocommit=True) as k:
            k.execute("CREATE TABLE handmade (id int)")
        t0 = time.monotonic()
        journal = RolloutJournal.load(Path(result.journal)).data
        report = fleet_status(cfg.name, targets, journal=journal, max_connections=16)
        drifting = [t.name for t in report.targets if t.drift]
        print(
            f"fleet status of {len(targets)} targets (history, runs, catalog, drift; 16 at "
            f"once): {time.monotonic() - t0:.1f} s; drift found on {', '.join(drifting)}"
        )

        # 2. a planted failure in wave 3 (waves 1-2 are the first 10 %, wave 3 up to 50 %)
        victim = targets[len(targets) * 10 // 100 + 10]
        with psycopg.connect(victim.dsn, autocommit=True) as k:
            k.execute("UPDATE accounts SET balance = -1 WHERE id = 5")
        (work / "b").mkdir()
        (work / "b" / "002.sql").write_text(
            "ALTER TABLE accounts ADD CONSTRAINT balance_nonneg CHECK (balance >= 0);\n"
        )
        plan2 = commands.load_plan([work / "b"], file_transaction=True)
        clock2 = _Clock()
        t0 = time.monotonic()
        halted = run_rollout(plan2, cfg, targets, opts, settings=settings, observer=clock2)
        wall2 = time.monotonic() - t0
        assert halted.state == "halted" and halted.halted_wave == 3, halted.message
        assert clock2.failed_at is not None and clock2.halted_at is not None
        print(
            f"planted failure on {victim.name} (wave 3): halted after "
            f"{(clock2.halted_at - clock2.failed_at) * 1000:.0f} ms from its failure; "
            f"{len(halted.names('done'))} targets have the change, "
            f"{len(halted.names('pending'))} never touched, run {wall2:.1f} s in all"
        )
    finally:
        for c in clusters:
            c.stop()
        for p in shm:
            shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
