"""Lint throughput: pgwarden vs squawk on one big file and on many small files.

Generates a corpus (default 20,000 statements; as one file and as 2,000 files
of 10), runs `pgwarden lint --format json` and `squawk --reporter json` on each
shape in the same run, and prints median wall times over --runs and the ratio.

    .venv/bin/python bench/lint_throughput.py [--statements 20000] [--runs 5]

squawk comes from the `squawk-cli` package on PyPI (a dev dependency).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATES = (
    "CREATE TABLE t{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now());",
    "ALTER TABLE invoices ADD COLUMN c{i} integer;",
    "CREATE INDEX idx_{i} ON invoices (payment_account_id, created_at) WHERE status = 'open';",
    "ALTER TABLE invoices ADD CONSTRAINT fk_{i} FOREIGN KEY (payment_account_id) "
    "REFERENCES payment_accounts (id);",
    "UPDATE invoices SET status = 'paid' WHERE id = {i};",
    "ALTER TABLE invoices ALTER COLUMN c{i} SET NOT NULL;",
    "INSERT INTO settings (key, value) VALUES ('k{i}', 'v');",
    "CREATE INDEX CONCURRENTLY idx_c_{i} ON invoices (amount_cents);",
    "ALTER TABLE invoices DROP COLUMN IF EXISTS old_{i};",
    "SELECT count(*) FROM invoices i JOIN payment_accounts p ON p.id = i.payment_account_id "
    "WHERE i.created_at > now() - interval '1 day';",
)


def corpus(n: int) -> list[str]:
    return [TEMPLATES[i % len(TEMPLATES)].format(i=i) for i in range(n)]


def timed(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # first run warms caches and is not counted
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
        if r.returncode not in (0, 1):
            sys.exit(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--statements", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    pgwarden = str(bindir / "pgwarden")
    squawk = shutil.which("squawk", path=str(bindir)) or shutil.which("squawk")
    if squawk is None:
        sys.exit("squawk not found: pip install squawk-cli")
    stmts = corpus(args.statements)
    with tempfile.TemporaryDirectory(prefix="pgwarden-bench-") as tmp:
        big = Path(tmp) / "big.sql"
        big.write_text("\n".join(stmts) + "\n")
        small_dir = Path(tmp) / "small"
        small_dir.mkdir()
        per = max(1, len(stmts) // args.files)
        for f in range(args.files):
            chunk = stmts[f * per : (f + 1) * per]
            (small_dir / f"{f:05d}.sql").write_text("\n".join(chunk) + "\n")
        small = sorted(str(p) for p in small_dir.glob("*.sql"))
        version = subprocess.run(
            [squawk, "--version"], capture_output=True, text=True
        ).stdout.strip()
        print(f"corpus: {len(stmts):,} statements; {version}; median of {args.runs} runs")
        print(f"{'shape':<28}{'pgwarden s':>12}{'squawk s':>12}{'ratio':>10}")
        for label, paths in (
            (f"1 file x {len(stmts):,}", [str(big)]),
            (f"{args.files:,} files x {per}", small),
        ):
            pw = timed([pgwarden, "lint", "--format", "json", *paths], args.runs)
            sq = timed([squawk, "--reporter", "json", *paths], args.runs)
            print(f"{label:<28}{pw:>12.3f}{sq:>12.3f}{pw / sq:>9.2f}x")
        print("ratio = pgwarden / squawk (below 1.00: pgwarden is faster)")


if __name__ == "__main__":
    main()
