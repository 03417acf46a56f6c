"""Replay of a blue/green major upgrade under load: PostgreSQL 15 -> 18 with `upgrade run`.

A PostgreSQL 15 source (system) with --rows rows (default 3,000,000) takes a
steady write load (--writers threads, each an INSERT about every --interval-ms,
each acknowledged id recorded with its time) while `pgwarden upgrade run`
(the real CLI, `--log-format json`) copies it to a PostgreSQL 18 (wheel)
server and switches over; the switch hook moves the writers to NEW. Then, with
the writers on NEW, `pgwarden upgrade rollback` moves them back to OLD.

Printed: each phase's time, the write pause at the switchover and at the
rollback (the longest gap between two acknowledged writes in that window),
the longest pause before the switchover (the verification's brief lock), and
writes lost (acknowledged, then missing on the side that takes the writes:
must be 0). Target: pause <= 2 s. RDS Blue/Green documents a switchover
"typically under a minute".

Run: .venv/bin/python bench/upgrade_replay.py [--rows 3000000] [--writers 2]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psycopg

from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster

LOGICAL = {
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "max_logical_replication_workers": "10",
    "max_worker_processes": "20",
}


class Writers:
    """Threads inserting into `orders`; the target DSN changes when a flag file appears."""

    def __init__(self, dsn: str, count: int, interval_s: float) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self.acked: list[tuple[float, int, str]] = []
        self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(count)]

    def retarget(self, dsn: str) -> None:
        with self.lock:
            self.dsn = dsn

    def follow(self, flag: Path, dsn: str) -> None:
        def watch() -> None:
            while not flag.exists() and not self.stop.is_set():
                time.sleep(0.001)
            self.retarget(dsn)

        threading.Thread(target=watch, daemon=True).start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                dsn = self.dsn
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as c:
                    while not self.stop.is_set():
                        with self.lock:
                            if self.dsn != dsn:
                                break
                        row = c.execute(
                            "INSERT INTO orders (customer, note) VALUES (42, 'load') RETURNING id"
                        ).fetchone()
                        assert row is not None
                        self.acked.append((time.monotonic(), int(row[0]), dsn))
                        time.sleep(self.interval_s)
            except psycopg.Error:
                self.errors += 1
                time.sleep(0.005)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def longest_gap(self, start: float, end: float) -> float:
        times = sorted(t for t, _, _ in self.acked if start <= t <= end)
        if len(times) < 2:
            return end - start
        return max(b - a for a, b in itertools.pairwise(times))


def _pgwarden(args: list[str], cwd: Path) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pgwarden", "upgrade", *args, "--log-format", "json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    events = []
    for line in proc.stderr.splitlines():
        if line.startswith("{"):
            events.append(orjson.loads(line))
    return proc.returncode, events, proc.stdout + proc.stderr


def _ids(dsn: str) -> set[int]:
    with psycopg.connect(dsn) as c:
        return {int(str(r[0])) for r in c.execute("SELECT id FROM orders")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--interval-ms", type=float, default=5.0)
    ap.add_argument("--switchover-timeout", type=float, default=30.0)
    args = ap.parse_args()

    old = Cluster.start(find_installation(15), settings=LOGICAL)
    new = Cluster.start(find_installation(18), settings=LOGICAL)
    work = Path(tempfile.mkdtemp(prefix="pgwarden-upgrade-bench-"))
    try:
        old_dsn, new_dsn = old.create_database("shop"), new.create_database("shop")
        t0 = time.monotonic()
        with psycopg.connect(old_dsn, autocommit=True) as c:
            c.execute(
                "CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, "
                "note text, at timestamptz NOT NULL DEFAULT now())"
            )
            c.execute(
                "INSERT INTO orders (customer, note) SELECT g %% 5000, md5(g::text) "
                "FROM generate_series(1, %s) g",
                (args.rows,),
            )
            c.execute("CREATE INDEX ON orders (customer)")
            c.execute("VACUUM ANALYZE orders")
            size = c.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            shown = size.fetchone()
        print(
            f"source: PostgreSQL {old.installation.version}, {args.rows:,} rows "
            f"({shown[0] if shown else '?'}), loaded in {time.monotonic() - t0:.1f} s; "
            f"target: PostgreSQL {new.installation.version}"
        )
        writers = Writers(old_dsn, args.writers, args.interval_ms / 1000)
        to_new, to_old = work / "to-new", work / "to-old"
        writers.follow(to_new, new_dsn)
        writers.start()
        time.sleep(2)
        hook = f'[ "$PGWARDEN_SWITCH_TO" = new ] && touch {to_new} || touch {to_old}'
        started = time.monotonic()
        code, events, text = _pgwarden(
            [
                "run",
                "--database-url",
                old_dsn,
                "--target-url",
                new_dsn,
                "--env",
                "bench",
                "--yes",
                "--switch-cmd",
                hook,
                "--switchover-timeout",
                str(args.switchover_timeout),
            ],
            work,
        )
        ended = time.monotonic()
        if code != 0:
            writers.join()
            sys.exit(f"upgrade run failed ({code}):\n{text[-3000:]}")
        time.sleep(2)  # writes on NEW
        switch_start = next(
            started + (float(str(e["at"])) - float(str(events[0]["at"])))
            for e in events
            if e["event"] == "upgrade_phase" and e["phase"] == "switchover"
        )
        print("\nupgrade run (15 -> 18):")
        for e in events:
            if e["event"] == "upgrade_phase" and e["status"] == "done":
                print(f"  {e['phase']:<14} {float(str(e['duration_s'])):7.2f} s")
        switched = next(e for e in events if e["event"] == "upgrade_switchover")
        print(
            f"  {'switchover':<14} {float(str(switched['writes_paused_s'])):7.2f} s "
            "(locks to hook done)"
        )
        print(f"  total          {ended - started:7.2f} s")
        with psycopg.connect(old_dsn) as c:
            steps = c.execute(
                "SELECT info -> 'switch_steps_s' FROM pgwarden_upgrade.runs"
            ).fetchone()
        print(f"  switchover steps (s): {steps[0] if steps else None}")
        pause = writers.longest_gap(switch_start - 0.5, time.monotonic())
        before = writers.longest_gap(started, switch_start - 0.5)
        acked_new_side = {i for _, i, _ in writers.acked}
        lost = len(acked_new_side - _ids(new_dsn))
        print(
            f"  write pause at switchover: {pause:.2f} s (longest gap between acknowledged "
            f"writes; before it, longest gap {before:.2f} s)"
        )
        print(f"  writes acknowledged: {len(writers.acked):,}; lost on NEW: {lost}")

        # rollback: the writers are on NEW; go back to OLD
        writers.follow(to_old, old_dsn)
        r_started = time.monotonic()
        code, events, text = _pgwarden(
            ["rollback", "--database-url", old_dsn, "--target-url", new_dsn, "--switch-cmd", hook],
            work,
        )
        r_ended = time.monotonic()
        if code != 0:
            writers.join()
            sys.exit(f"upgrade rollback failed ({code}):\n{text[-3000:]}")
        time.sleep(2)
        writers.join()
        r_pause = writers.longest_gap(r_started - 0.5, time.monotonic())
        r_lost = len({i for _, i, _ in writers.acked} - _ids(old_dsn))
        back = next(e for e in events if e["event"] == "upgrade_switchover")
        print("\nupgrade rollback (18 -> 15):")
        print(
            f"  total          {r_ended - r_started:7.2f} s (pgwarden's own: "
            f"{float(str(back['writes_paused_s'])):.2f} s writes refused on NEW)"
        )
        print(f"  write pause at rollback: {r_pause:.2f} s")
        print(f"  writes acknowledged: {len(writers.acked):,}; lost on OLD: {r_lost}")
        print(f"  writer errors (refused or ended sessions, retried): {writers.errors}")
        ok = lost == 0 and r_lost == 0 and pause <= 2.0 and r_pause <= 2.0
        print("\ntarget (pause <= 2 s, 0 lost): " + ("met" if ok else "NOT met"))
    finally:
        old.stop()
        new.stop()


if __name__ == "__main__":
    main()
