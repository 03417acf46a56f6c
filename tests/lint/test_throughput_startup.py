"""What `pgwarden lint` loads and touches per run and per file (bench/lint_throughput.py).

A plain `lint --format json` without a snapshot or a configuration file never needs the
stats snapshot's types, the TOML parser, difflib or importlib.resources; a path named on
the command line is stat'ed once and still reads "missing" exactly as `Path.exists()` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgwarden.errors import InputError
from pgwarden.sources.sql_files import collect_sql_files, read_sources

# Runs the CLI in-process, then prints the modules it loaded (stdin closed, as in CI).
_PROBE = """
import json, sys
from pgwarden import cli
try:
    cli._run(["lint", "--format", "json", "m.sql"])
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""

NOT_NEEDED = ("pgwarden.pg.stats", "tomllib", "difflib", "importlib.resources")


def _loaded(cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
        check=False,
    )
    assert '"findings"' in proc.stdout, proc.stdout + proc.stderr
    return set(json.loads(proc.stderr))


def test_plain_lint_loads_no_snapshot_toml_or_resources(tmp_path: Path):
    (tmp_path / ".git").mkdir()  # the config search stops here: no configuration file
    # No DEFAULT to judge: builtin_functions.txt (importlib.resources) is never read
    (tmp_path / "m.sql").write_text("ALTER TABLE t ADD COLUMN c int;\nCREATE INDEX i ON t (c);\n")
    loaded = _loaded(tmp_path)
    assert not loaded & set(NOT_NEEDED), sorted(loaded & set(NOT_NEEDED))
    assert "pgwarden.rules" in loaded  # the probe really linted


def test_what_needs_them_still_loads_them(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pgwarden.toml").write_text('fail_on = "error"\n')
    # A DEFAULT's volatility is read from builtin_functions.txt
    (tmp_path / "m.sql").write_text("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();\n")
    loaded = _loaded(tmp_path)
    assert {"tomllib", "importlib.resources"} <= loaded


@pytest.mark.parametrize("make", ["loop", "under_a_file", "nul"])
def test_a_path_that_cannot_exist_is_missing(tmp_path: Path, make: str):
    if make == "loop":
        path = tmp_path / "loop.sql"
        path.symlink_to(path)  # ELOOP
    elif make == "under_a_file":
        (tmp_path / "f.sql").write_text("SELECT 1;")
        path = tmp_path / "f.sql" / "x.sql"  # ENOTDIR
    else:
        path = tmp_path / "a\0b.sql"  # ValueError from the OS layer
    with pytest.raises(InputError, match="no such file or directory"):
        collect_sql_files([path])


def test_many_files_read_in_order(tmp_path: Path):
    names = [f"{i:03d}.sql" for i in range(30)]
    for i, name in enumerate(names):
        (tmp_path / name).write_text(f"SELECT {i};\n")
    got = read_sources([tmp_path / n for n in reversed(names)])
    assert [s.path for s, _ in got] == [str(tmp_path / n) for n in reversed(names)]
    assert [s.text for s, _ in got] == [f"SELECT {i};\n" for i in reversed(range(30))]
