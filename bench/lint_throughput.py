"""Lint throughput: pgwarden vs squawk (and vs an older pgwarden) on two shapes.

Generates a corpus (default 20,000 statements; as one file and as 2,000 files
of 10), runs `pgwarden lint --format json` and `squawk --reporter json` on each
shape in the same run, taking turns run by run, and prints median wall times
over --runs, peak memory (max RSS of the process) and the ratios, in wall time
and in CPU time (user + system: on a shared, busy machine the steadier of the
two). With --baseline REV (default 0bbc838, the commit before issue 14's
remaining work) the same corpus is linted by that revision too, checked out
into a temporary git worktree and run with this venv's interpreter, so a
regression shows as a ratio above 1.00. `--select-one N` adds a file of N
`SELECT 1;` statements (the memory kept per statement).

`--fix N` measures `lint --fix` instead (no squawk): one file of N statements, half
CREATE INDEX and half ALTER TABLE ... ADD COLUMN on four tables, in one transaction
(every build is moved out of it, every statement made safe to run again), fixed from
a fresh copy in every run, next to `lint --format json` of the same file and, with
--baseline, the baseline's `lint --fix`.

    .venv/bin/python bench/lint_throughput.py [--statements 20000] [--runs 5]
        [--baseline 0bbc838|none] [--squawk PATH] [--select-one 200000]
    .venv/bin/python bench/lint_throughput.py --fix 10000 [--runs 3] [--baseline REV|none]

Both pgwarden trees are byte-compiled first (`compileall`), as an installed
package is: without it, a tree whose .pyc files are missing or stale (a fresh
worktree, files just edited, PYTHONDONTWRITEBYTECODE set) recompiles its
modules in every run, about half of pgwarden's start-up.

squawk is the `squawk-cli` wheel from PyPI, installed outside the project:
    .venv/bin/python -m pip install --target /tmp/squawk squawk-cli
and found as --squawk, on PATH, or in /tmp/squawk/bin.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

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


FIX_TABLES = ("invoices", "payment_accounts", "settings", "orders")


def fix_corpus(n: int) -> list[str]:
    """`n` statements for `lint --fix`: an index build and an added column, by turns."""
    out = []
    for i in range(n // 2):
        table = FIX_TABLES[i % len(FIX_TABLES)]
        out.append(f"CREATE INDEX idx_{i} ON {table} (c{i});")
        out.append(f"ALTER TABLE {table} ADD COLUMN c{n + i} integer;")
    return out


class Run(NamedTuple):
    """Median wall and CPU (user + system) seconds over the runs, and the largest peak RSS."""

    wall: float
    cpu: float
    mb: float


def rss_run(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """One run: wall and CPU seconds and peak RSS in MB (wait4 on the child itself)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-500:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(time.perf_counter() - t, cpu, usage.ru_maxrss / 1024)


Command = tuple[list[str], dict[str, str] | None]  # argv and environment (None: this one)


def measure(cmds: list[Command], runs: int, fresh: Path | None = None) -> list[Run]:
    """Per command: medians over `runs` (after one warm-up round) and the largest peak RSS.

    The commands take turns, one run each per round, so a change in the machine's load
    falls on all of them rather than on whichever ran during it. `fresh`: a file copied
    over the command's last argument before each run (what `lint --fix` rewrites).
    """

    def one(cmd: list[str], env: dict[str, str] | None) -> Run:
        if fresh is not None:
            shutil.copyfile(fresh, cmd[-1])
        return rss_run(cmd, env)

    rounds = [[one(cmd, env) for cmd, env in cmds] for _ in range(runs + 1)]
    out = []
    for i in range(len(cmds)):
        results = [r[i] for r in rounds]
        out.append(
            Run(
                statistics.median(r.wall for r in results[1:]),
                statistics.median(r.cpu for r in results[1:]),
                max(r.mb for r in results),
            )
        )
    return out


def find_squawk(given: str | None) -> str:
    bindir = Path(sys.executable).parent
    for found in (
        given,
        shutil.which("squawk", path=str(bindir)),
        shutil.which("squawk"),
        shutil.which("squawk", path="/tmp/squawk/bin"),
    ):
        if found:
            return found
    sys.exit(
        "squawk not found: .venv/bin/python -m pip install --target /tmp/squawk squawk-cli "
        "(or pass --squawk PATH)"
    )


def byte_compile(src: Path) -> None:
    """Write the .pyc files of the modules under `src`, so runs load rather than compile."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)


@contextmanager
def baseline_checkout(rev: str) -> Iterator[Path | None]:
    """`rev` checked out into a temporary git worktree (its src/), removed afterwards."""
    if rev == "none":
        yield None
        return
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="pgwarden-baseline-"))
    where = tmp / "tree"
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", str(where), rev],
        check=True,
        capture_output=True,
    )
    try:
        yield where / "src"
    finally:
        subprocess.run(
            ["git", "-C", str(root), "worktree", "remove", "--force", str(where)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--statements", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--baseline", default="0bbc838", help="git revision to compare, or none")
    ap.add_argument("--squawk", default=None, help="the squawk binary")
    ap.add_argument("--select-one", type=int, default=0, help="also lint N x 'SELECT 1;'")
    ap.add_argument("--fix", type=int, default=0, help="measure lint --fix of N statements")
    args = ap.parse_args()
    bindir = Path(sys.executable).parent
    pgwarden = [str(bindir / "pgwarden")]
    if args.fix:
        fix_shape(pgwarden, args.fix, args.runs, args.baseline)
        return
    squawk = find_squawk(args.squawk)
    stmts = corpus(args.statements)
    with (
        tempfile.TemporaryDirectory(prefix="pgwarden-bench-") as tmp,
        baseline_checkout(args.baseline) as base_src,
    ):
        big = Path(tmp) / "big.sql"
        big.write_text("\n".join(stmts) + "\n")
        small_dir = Path(tmp) / "small"
        small_dir.mkdir()
        per = max(1, len(stmts) // args.files)
        for f in range(args.files):
            chunk = stmts[f * per : (f + 1) * per]
            (small_dir / f"{f:05d}.sql").write_text("\n".join(chunk) + "\n")
        small = sorted(str(p) for p in small_dir.glob("*.sql"))
        shapes = [
            (f"1 file x {len(stmts):,}", [str(big)]),
            (f"{args.files:,} files x {per}", small),
        ]
        if args.select_one:
            ones = Path(tmp) / "select1.sql"
            ones.write_text("SELECT 1;\n" * args.select_one)
            shapes.append((f"1 file x {args.select_one:,} SELECT 1", [str(ones)]))
        base_env = None
        byte_compile(Path(__file__).resolve().parents[1] / "src")
        if base_src is not None:
            byte_compile(base_src)
            base_env = {**os.environ, "PYTHONPATH": str(base_src)}
        version = subprocess.run(
            [squawk, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(
            f"corpus: {len(stmts):,} statements; {version}; baseline {args.baseline}; "
            f"median of {args.runs} runs; memory = peak RSS"
        )
        head = f"{'shape':<30}{'pgwarden':>10}{'MB':>7}{'squawk':>9}{'MB':>7}"
        head += f"{'/squawk':>9}{'cpu':>7}"
        if base_env is not None:
            head += f"{args.baseline:>10}{'MB':>7}{'/base':>8}{'cpu':>7}"
        print(head)
        for label, paths in shapes:
            cmds: list[Command] = [
                ([*pgwarden, "lint", "--format", "json", *paths], None),
                ([squawk, "--reporter", "json", *paths], None),
            ]
            if base_env is not None:
                cmd = [sys.executable, "-m", "pgwarden", "lint", "--format", "json", *paths]
                cmds.append((cmd, base_env))
            pw, sq, *base = measure(cmds, args.runs)
            line = (
                f"{label:<30}{pw.wall:>9.3f}s{pw.mb:>7.0f}{sq.wall:>8.3f}s{sq.mb:>7.0f}"
                f"{pw.wall / sq.wall:>8.2f}x{pw.cpu / sq.cpu:>6.2f}x"
            )
            for bs in base:
                line += f"{bs.wall:>9.3f}s{bs.mb:>7.0f}{pw.wall / bs.wall:>7.2f}x"
                line += f"{pw.cpu / bs.cpu:>6.2f}x"
            print(line, flush=True)
        print(
            "/squawk = pgwarden / squawk, /base = pgwarden / the baseline revision "
            "(below 1.00: faster), in wall time, then (cpu) in user + system CPU time, "
            "which a busy machine disturbs less"
        )


def fix_shape(pgwarden: list[str], n: int, runs: int, baseline: str) -> None:
    """`lint --fix` of one file of `n` statements (fix_corpus) beside `lint --format json`
    of it, and the baseline revision's `lint --fix`."""
    with (
        tempfile.TemporaryDirectory(prefix="pgwarden-bench-") as tmp,
        baseline_checkout(baseline) as base_src,
    ):
        source = Path(tmp) / "source.sql"
        source.write_text("\n".join(fix_corpus(n)) + "\n")
        target = str(Path(tmp) / "fixed.sql")
        byte_compile(Path(__file__).resolve().parents[1] / "src")
        cmds: list[Command] = [
            ([*pgwarden, "lint", "--format", "json", target], None),
            ([*pgwarden, "lint", "--fix", target], None),
        ]
        if base_src is not None:
            byte_compile(base_src)
            base_env = {**os.environ, "PYTHONPATH": str(base_src)}
            cmds.append(([sys.executable, "-m", "pgwarden", "lint", "--fix", target], base_env))
        lint, fix, *base = measure(cmds, runs, fresh=source)
        print(
            f"lint --fix of 1 file x {n:,} statements ({n // 2:,} CREATE INDEX, "
            f"{n // 2:,} ADD COLUMN on {len(FIX_TABLES)} tables); baseline {baseline}; "
            f"median of {runs} runs; memory = peak RSS"
        )
        head = f"{'lint json':>10}{'cpu':>8}{'MB':>7}{'lint --fix':>11}{'cpu':>8}{'MB':>7}"
        line = f"{lint.wall:>9.2f}s{lint.cpu:>7.2f}s{lint.mb:>7.0f}"
        line += f"{fix.wall:>10.2f}s{fix.cpu:>7.2f}s{fix.mb:>7.0f}"
        for bs in base:
            head += f"{'baseline':>10}{'cpu':>8}{'MB':>7}{'/base':>7}{'cpu':>7}"
            line += f"{bs.wall:>9.2f}s{bs.cpu:>7.2f}s{bs.mb:>7.0f}"
            line += f"{fix.wall / bs.wall:>6.2f}x{fix.cpu / bs.cpu:>6.2f}x"
        print(head)
        print(line, flush=True)
        print(
            "cpu = user + system CPU time, which a busy machine disturbs less; /base = this "
            "lint --fix / the baseline's (below 1.00: faster)"
        )


if __name__ == "__main__":
    main()
