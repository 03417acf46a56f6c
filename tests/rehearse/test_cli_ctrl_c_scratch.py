"""Ctrl-C in a rehearsal on a staging server (--database-url) says that the scratch
database was dropped, not a cluster that never existed, and drops it (real server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from pgwarden.demo import SCHEMA_SQL


def _scratch(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'pgwarden\\_rehearse\\_%'"
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_ctrl_c_on_a_staging_server_names_the_dropped_scratch_database(
    pg_cluster: Any, tmp_path: Path
) -> None:
    (tmp_path / "schema.sql").write_text(SCHEMA_SQL)
    plan = tmp_path / "001.sql"
    plan.write_text("ALTER TABLE settings ADD COLUMN note text;\nSELECT pg_sleep(120);\n")
    env = dict(os.environ, PGWARDEN_REHEARSALS=str(tmp_path / "records"), COLUMNS="160")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgwarden", "rehearse", str(plan), "--database-url",
         pg_cluster.dsn(), "--schema", str(tmp_path / "schema.sql"), "--rows-cap", "500"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%'"
                    " AND datname LIKE 'pgwarden\\_rehearse\\_%'"
                ).fetchone()
                if row is not None and int(str(row[0])) > 0:
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=120)
            left = _scratch(conn)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.decode()
    assert proc.returncode == 2, text
    assert "interrupted; the scratch database pgwarden_rehearse_" in text, text
    assert "was dropped" in text and "rehearsal cluster" not in text, text
    assert left == []
