"""What webhook notifications cost a run, and how fast they arrive.

Prints, against a local receiver (http.server in a thread):
  - the time the command's thread spends per event in the notifier (enabled, one JSON
    webhook), for a stream of backfill batches (progress, rate-limited) and of lock
    retries (waits), against a baseline observer that does nothing;
  - delivery latency (queued -> received) of `started`/`done` to a live receiver;
  - how long the command's exit waits when the receiver is dead (closed port) and
    when it never answers, with exit_wait_s as configured.
Run: .venv/bin/python bench/notify_overhead.py [--events 200000] [--exit-wait 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.notify.receiver import closed_port, receiver

from pgwarden.events import BackfillBatch, Retry
from pgwarden.notify import attach
from pgwarden.settings import load_settings


def _settings(folder: Path, exit_wait: float) -> object:
    path = folder / "pgwarden.toml"
    path.write_text(
        f"[notify]\nprogress_every_s = 1\nexit_wait_s = {exit_wait}\n\n"
        '[[notify.webhooks]]\nurl_env = "BENCH_HOOK"\n'
    )
    return load_settings(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--exit-wait", type=float, default=5.0)
    args = ap.parse_args()
    import os

    folder = Path(tempfile.mkdtemp(prefix="pgwarden-notify-bench-"))
    settings = _settings(folder, args.exit_wait)
    batch = BackfillBatch(
        rows=100,
        total_rows=100,
        last_pk=1,
        max_pk=10,
        batch_size=100,
        batch_ms=1.0,
        progress=0.5,
        eta_s=1.0,
    )
    retry = Retry(
        steps=(0,), attempt=2, reason="lock_timeout", delay_ms=100, sqlstate=None, waited_on=()
    )
    with receiver() as rx:
        os.environ["BENCH_HOOK"] = rx.url
        for name, event in (("progress (backfill batch)", batch), ("wait (lock retry)", retry)):
            t0 = time.perf_counter()
            for _ in range(args.events):
                pass
            empty = time.perf_counter() - t0
            with attach(settings, command="bench", warn=lambda _m: None) as notifier:  # type: ignore[arg-type]
                t0 = time.perf_counter()
                for _ in range(args.events):
                    notifier(event)
                took = time.perf_counter() - t0 - empty
            print(
                f"{name:28s} {took / args.events * 1e6:7.2f} µs per event in the notifier "
                f"({args.events:,} events, {len(rx.requests)} requests so far)"
            )
        lat: list[float] = []
        for _ in range(20):
            before = len(rx.requests)
            t0 = time.perf_counter()
            with attach(settings, command="bench", warn=lambda _m: None):  # type: ignore[arg-type]
                pass
            with rx.cond:
                rx.cond.wait_for(lambda b=before: len(rx.requests) >= b + 2, 10)
            lat.append(time.perf_counter() - t0)
        print(
            "started+done delivered and the block left: median "
            f"{statistics.median(lat) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms (20 runs)"
        )
    warnings: list[str] = []
    os.environ["BENCH_HOOK"] = f"http://127.0.0.1:{closed_port()}/x"
    t0 = time.perf_counter()
    with attach(settings, command="bench", warn=warnings.append):  # type: ignore[arg-type]
        pass
    print(f"dead receiver (closed port): exit waited {time.perf_counter() - t0:.2f} s; {warnings}")
    with receiver("hang") as rx:
        os.environ["BENCH_HOOK"] = rx.url
        warnings.clear()
        t0 = time.perf_counter()
        with attach(settings, command="bench", warn=warnings.append):  # type: ignore[arg-type]
            pass
        print(
            f"receiver that never answers: exit waited {time.perf_counter() - t0:.2f} s; {warnings}"
        )


if __name__ == "__main__":
    main()
