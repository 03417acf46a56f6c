"""The command as a user runs it, in a subprocess: output, exit codes, and nothing left behind.

Each run gets its own TMPDIR, so "no leftovers" means: no cluster directory in
it and no process whose command line names it, after a normal exit, a failed
step, and Ctrl-C (SIGINT) in the middle of a step.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from pgwarden.demo import SCHEMA_SQL
from tests.rehearse.conftest import INCIDENT, write


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """A TMPDIR the unprivileged server user can traverse (clusters live in it)."""
    d = Path(tempfile.mkdtemp(prefix="pgwarden-rehearse-test-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


def _env(d: Path) -> dict[str, str]:
    return dict(os.environ, TMPDIR=str(d), PGWARDEN_REHEARSALS=str(d / "records"), COLUMNS="160")


def _cmd(d: Path, *args: str) -> list[str]:
    schema = d / "schema.sql"
    schema.write_text(SCHEMA_SQL)
    return [
        sys.executable,
        "-m",
        "pgwarden",
        "rehearse",
        *args,
        "--schema",
        str(schema),
        "--rows-cap",
        "2000",
    ]


def _processes_naming(d: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(d).encode() in cmdline:
            found.append(int(proc.name))
    return found


def _assert_clean(d: Path) -> None:
    assert list(d.glob("pgwarden-cluster-*")) == []
    assert _processes_naming(d) == []


def test_json_output_and_report(sandbox: Path):
    report = sandbox / "report.html"
    done = subprocess.run(
        _cmd(sandbox, str(INCIDENT), "--format", "json", "--report", str(report)),
        env=_env(sandbox),
        cwd=sandbox,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr.decode()  # an error finding
    data = orjson.loads(done.stdout)
    assert data["status"] == "completed"
    assert [s["strongest"]["invoices"] for s in data["steps"]] == ["ACCESS EXCLUSIVE"] * 2
    assert any(f["code"] == "RH101" for f in data["findings"])
    assert Path(data["record_path"]).is_file()
    html = report.read_text()
    assert html.count("<svg") >= 1 and "ACCESS EXCLUSIVE" in html
    # One file that needs no network: nothing is loaded from anywhere.
    for needle in ("<script", "<link", "<img", "<iframe", "@import"):
        assert needle not in html
    assert not re.search(r"url\((?!#)", html)  # only references to ids in the page
    assert not re.search(r"href=\"(?!#)", html)
    _assert_clean(sandbox)


def test_failed_step_exits_1_and_leaves_nothing(sandbox: Path):
    plan = write(sandbox, "001.sql", "ALTER TABLE no_such_table ADD COLUMN x int;\n")
    done = subprocess.run(
        _cmd(sandbox, str(plan)),
        env=_env(sandbox),
        cwd=sandbox,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    out = done.stdout.decode()
    assert "RH102" in out and "no_such_table" in out and "rolled back" in out
    _assert_clean(sandbox)


def test_ctrl_c_removes_the_cluster_and_writes_a_partial_report(sandbox: Path):
    plan = write(
        sandbox, "001.sql", "ALTER TABLE settings ADD COLUMN note text;\nSELECT pg_sleep(120);\n"
    )
    report = sandbox / "report.html"
    proc = subprocess.Popen(
        _cmd(sandbox, str(plan), "--report", str(report)),
        env=_env(sandbox),
        cwd=sandbox,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        postmaster = _wait_for_sleep(sandbox, proc)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err.decode()
    assert "interrupted" in err.decode()
    assert "partial report" in err.decode()
    html = report.read_text()
    assert "interrupted" in html and "pg_sleep" in html
    with pytest.raises(ProcessLookupError):
        os.kill(postmaster, 0)
    _assert_clean(sandbox)


def _wait_for_sleep(d: Path, proc: subprocess.Popen[bytes]) -> int:
    """Wait until the rehearsal runs pg_sleep; return the server's pid."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for cluster in d.glob("pgwarden-cluster-*"):
            try:
                pid = int((cluster / "data" / "postmaster.pid").read_text().split()[0])
                with psycopg.connect(
                    host=str(cluster),
                    port=5432,
                    dbname="rehearsal",
                    user="postgres",
                    autocommit=True,
                    connect_timeout=2,
                ) as c:
                    row = c.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%%'"
                    ).fetchone()
                if row == (1,):
                    return pid
            except (OSError, ValueError, IndexError, psycopg.Error):
                pass
        time.sleep(0.1)
    raise AssertionError("the rehearsal never reached pg_sleep")
