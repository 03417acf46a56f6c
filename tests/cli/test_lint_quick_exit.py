"""`pgwarden lint` ends its process without the interpreter's teardown (freeing a large
run's objects one by one costs CPU and changes nothing), with all of its output written
and the documented exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# An atexit handler runs in a normal interpreter exit and not after os._exit.
PGWARDEN = [
    sys.executable,
    "-c",
    "import atexit, sys; atexit.register(lambda: print('teardown', file=sys.stderr)); "
    "from pgwarden.cli import main; main()",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGWARDEN_DATABASE_URL")
    }
    return subprocess.run(
        [*PGWARDEN, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_lint_output_whole_and_exit_code_without_teardown(tmp_path: Path) -> None:
    sql = tmp_path / "001.sql"
    # Output much larger than a pipe's buffer: nothing may be left unflushed.
    sql.write_text("".join(f"CREATE INDEX i{n} ON invoices (c{n});\n" for n in range(2000)))
    r = run("lint", "--format", "json", str(sql))
    assert r.returncode == 1, r.stderr
    assert "teardown" not in r.stderr
    assert len(json.loads(r.stdout)["findings"]) >= 2000

    r = run("lint", "--format", "json", "--fail-on", "never", str(sql))
    assert r.returncode == 0, r.stderr
    assert "teardown" not in r.stderr

    r = run("lint", str(tmp_path / "missing.sql"))
    assert r.returncode == 2
    assert r.stderr.startswith("pgwarden: error:"), r.stderr
    assert "teardown" not in r.stderr


def test_other_commands_keep_the_teardown() -> None:
    r = run("explain", "SELECT 1")
    assert r.returncode == 0, r.stderr
    assert "teardown" in r.stderr
