"""How lint and apply --dry-run grow with the input: time and peak memory per size.

Writes SQL files of 1 MB, 10 MB and 64 MB for `pgwarden lint --format json`, and
plans of 10k and 100k statements for `pgwarden apply --dry-run`; runs each in a
child process (output to /dev/null) and prints wall time, CPU time and the
child's peak RSS (os.wait4's rusage, as getrusage(RUSAGE_CHILDREN) reports it,
but for that one child), then the growth of each per 10x of input. Linear
growth is 10x per 10x.

    .venv/bin/python bench/scale.py [--corpus migration|select|ignore|indexes] [--sizes 1,10,64]
                                    [--dry-run 10000,100000] [--stats FILE]

Corpora: `migration` cycles through bench/lint_throughput.py's ten statement
templates (DDL, DML, a query); `select` is `SELECT 1;` per line; `ignore` is
`-- pgwarden: ignore PW101 <reason>` before each CREATE INDEX; `indexes` is one
index build per table, all in the file's one transaction. A 64 MB file of
small statements needs several GB of memory (see the RSS of the smaller sizes);
pass --sizes 1,10 on a small machine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lint_throughput import TEMPLATES

MB = 1_000_000


def _migration(i: int) -> str:
    return TEMPLATES[i % len(TEMPLATES)].format(i=i) + "\n"


def _select(i: int) -> str:
    return "SELECT 1;\n"


def _ignore(i: int) -> str:
    return f"-- pgwarden: ignore PW101 small table\nCREATE INDEX i{i} ON t (a);\n"


def _indexes(i: int) -> str:
    return f"CREATE INDEX i{i} ON t{i} (a);\n"


CORPORA: dict[str, Callable[[int], str]] = {
    "migration": _migration,
    "select": _select,
    "ignore": _ignore,
    "indexes": _indexes,
}


def write_bytes(path: Path, make: Callable[[int], str], size: int) -> int:
    """Statements of `make` until the file holds about `size` bytes; returns their count."""
    n = 0
    written = 0
    with path.open("w") as f:
        while written < size:
            chunk = "".join(make(n + k) for k in range(1000))
            if written + len(chunk) > size:  # the last statements one by one
                for _ in range(1000):
                    line = make(n)
                    if written + len(line) > size:
                        break
                    f.write(line)
                    written += len(line)
                    n += 1
                break
            f.write(chunk)
            written += len(chunk)
            n += 1000
    return n


def write_count(path: Path, make: Callable[[int], str], count: int) -> None:
    with path.open("w") as f:
        for start in range(0, count, 1000):
            f.write("".join(make(i) for i in range(start, min(count, start + 1000))))


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS in bytes) of one run of `cmd`."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


Row = tuple[int, float, float, int, int]  # input size, wall s, cpu s, peak RSS, statements


def report(title: str, unit: str, rows: list[Row]) -> None:
    print(title)
    print(
        f"  {'input':>14}{'stmts':>11}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}{'cpu us/st':>11}"
    )
    for size, wall, cpu, rss, n in rows:
        print(
            f"  {size:>11,} {unit:<2}{n:>11,}{wall:>9.2f}{cpu:>9.2f}{rss / MB:>13.0f}"
            f"{cpu / n * 1e6:>11.1f}"
        )
    for (s0, _, c0, r0, _), (s1, _, c1, r1, _) in itertools.pairwise(rows):
        tens = math.log10(s1 / s0)  # the growth per 10x of input: ratio ** (1 / tens)
        print(
            f"  {s0:,} -> {s1:,} {unit} (x{s1 / s0:.1f}): cpu x{c1 / c0:.1f}, peak RSS "
            f"x{r1 / r0:.1f}; per 10x: cpu x{(c1 / c0) ** (1 / tens):.1f}, "
            f"peak RSS x{(r1 / r0) ** (1 / tens):.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="migration")
    ap.add_argument("--sizes", default="1,10,64", help="lint file sizes in MB (10^6 bytes)")
    ap.add_argument("--dry-run", default="10000,100000", help="dry-run plan sizes (statements)")
    ap.add_argument("--stats", default=None, help="stats snapshot for both commands")
    args = ap.parse_args()
    pgwarden = str(Path(sys.executable).parent / "pgwarden")
    make = CORPORA[args.corpus]
    stats = ["--stats", str(Path(args.stats).resolve())] if args.stats else []
    with tempfile.TemporaryDirectory(prefix="pgwarden-scale-") as tmp:
        work = Path(tmp)
        rows = []
        for size in (int(s) for s in args.sizes.split(",") if s):
            path = work / f"lint_{size}mb.sql"
            n = write_bytes(path, make, size * MB)
            wall, cpu, rss = measure(
                [pgwarden, "lint", "--format", "json", *stats, str(path)], work
            )
            rows.append((size, wall, cpu, rss, n))
            path.unlink()
        if rows:
            report(f"lint --format json, corpus {args.corpus}", "MB", rows)
        rows = []
        for count in (int(c) for c in args.dry_run.split(",") if c):
            path = work / f"plan_{count}.sql"
            write_count(path, make, count)
            wall, cpu, rss = measure([pgwarden, "apply", "--dry-run", *stats, str(path)], work)
            rows.append((count, wall, cpu, rss, count))
            path.unlink()
        if rows:
            report(f"apply --dry-run, corpus {args.corpus}", "st", rows)


if __name__ == "__main__":
    main()
