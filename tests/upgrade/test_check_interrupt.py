"""Ctrl-C during `upgrade check`'s pg_upgrade --check: one message, exit 2, and no server
or cluster directory left behind (pg_upgrade's own servers included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database


def _servers_under(prefix: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmd and prefix in cmd:
            found.append(cmd)
    return found


def test_ctrl_c_during_pg_upgrade_leaves_nothing_running(
    cluster_of: Callable[[int], Cluster],
) -> None:
    dsn = new_database(cluster_of(15))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgwarden", "upgrade", "check", "--database-url", dsn, "--to", "18"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until pg_upgrade has started a server of its own on one of our clusters.
    mine: list[Path] = []
    upgrade_servers: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not upgrade_servers and proc.poll() is None:
        mine = [
            p
            for p in Path(tempfile.gettempdir()).glob("pgwarden-cluster-*")
            if _owner(p) == proc.pid
        ]
        upgrade_servers = [
            cmd for p in mine for cmd in _servers_under(str(p)) if "50432" in cmd or "50433" in cmd
        ]
        time.sleep(0.02)
    assert upgrade_servers, "pg_upgrade never started its servers"
    os.kill(proc.pid, signal.SIGINT)
    _out, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    for p in mine:
        assert not p.exists()
        assert _servers_under(str(p)) == []


def _owner(path: Path) -> int | None:
    try:
        return int((path / "owner.pid").read_text())
    except (OSError, ValueError):
        return None
