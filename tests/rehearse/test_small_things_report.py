"""`rehearse --report` without matplotlib: the report is written without charts, and says so.

A real rehearsal in a subprocess whose `import matplotlib` fails (a meta-path
finder that refuses it, installed before pgwarden is imported).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.demo import SCHEMA_SQL
from tests.rehearse.conftest import write

BLOCK_MATPLOTLIB = """
import sys
class _NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, _NoMatplotlib())
from pgwarden.cli import main
main()
"""


@pytest.fixture
def sandbox() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pgwarden-small-things-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def test_report_without_matplotlib_has_no_charts_and_says_so(sandbox: Path) -> None:
    schema = sandbox / "schema.sql"
    schema.write_text(SCHEMA_SQL)
    plan = write(sandbox, "001.sql", "ALTER TABLE settings ADD COLUMN note text;\n")
    report = sandbox / "report.html"
    argv = [sys.executable, "-c", BLOCK_MATPLOTLIB, "rehearse", str(plan), "--schema", str(schema)]
    argv += ["--rows-cap", "2000", "--report", str(report)]
    env = dict(os.environ, TMPDIR=str(sandbox), PGWARDEN_REHEARSALS=str(sandbox / "r"))
    done = subprocess.run(
        argv,
        env={**env, "COLUMNS": "200"},
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "rehearsal completed" in done.stdout
    assert "report has no charts: matplotlib is not installed" in done.stdout
    html = report.read_text()
    assert "<svg" not in html
    assert "report has no charts: matplotlib is not installed" in html
    assert "ALTER TABLE settings ADD COLUMN note text" in html


def test_rehearse_names_relations_created_in_the_open_transaction(sandbox: Path) -> None:
    """The lock sampler's own session cannot see a table the migration's open transaction
    created; its locks (and a rewrite's transient copy) printed as bare OIDs."""
    schema = sandbox / "schema.sql"
    schema.write_text("CREATE TABLE base (id int);\n")
    plan = write(
        sandbox,
        "001.sql",
        "CREATE TABLE t2 (id int);\nINSERT INTO t2 SELECT generate_series(1, 100000);\n"
        "CREATE INDEX t2_id ON t2 (id);\n"
        "ALTER TABLE t2 ADD COLUMN v int DEFAULT random()::int;\nSELECT pg_sleep(0.3);\n",
    )
    argv = [sys.executable, "-m", "pgwarden", "rehearse", str(plan), "--schema", str(schema)]
    env = dict(os.environ, TMPDIR=str(sandbox), PGWARDEN_REHEARSALS=str(sandbox / "r"))
    for fmt in ("json", "text"):
        done = subprocess.run(
            [*argv, "--format", fmt],
            env={**env, "COLUMNS": "200"},
            cwd=sandbox,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        if fmt == "json":
            data = json.loads(done.stdout)
            held = {lk["relation"] for s in data["steps"] for lk in s["locks"]}
            assert {"t2", "t2_id"} <= held, held
            assert not [r for r in held if r.isdigit()], held
        else:
            oids = re.findall(r"(?:EXCLUSIVE|SHARE) (\d{4,})\b", done.stdout)
            assert oids == [], done.stdout
