"""`pgwarden backup restore` notifies like create, verify and drill: `started`, then `done`
(or `failed` when the restored tables differ), naming the target database (real cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tests.fixtures.pg import new_database
from tests.notify.receiver import receiver

CONFIG = '[[notify.webhooks]]\nurl_env = "HOOK_URL"\nformat = "json"\n'


def _pgwarden(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "500", "HOOK_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True, text=True, cwd=folder, env=env, timeout=300, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_backup_restore_notifies_started_and_done(pg_cluster: Any, tmp_path: Path) -> None:
    source = new_database(pg_cluster)
    with psycopg.connect(source, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
    cat = ("--catalogue", "cat")
    assert _pgwarden(tmp_path, "http://127.0.0.1:1/", "backup", "create", "--database-url",
                     source, *cat).returncode == 0  # fmt: skip
    assert _pgwarden(tmp_path, "http://127.0.0.1:1/", "backup", "verify", "--latest",
                     *cat).returncode == 0  # fmt: skip
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    target = new_database(pg_cluster)
    name = psycopg.conninfo.conninfo_to_dict(source)["dbname"]
    at = datetime.now(UTC).isoformat(timespec="seconds")
    with receiver() as rx:
        run = _pgwarden(
            tmp_path, rx.url, "backup", "restore", "--at", at, "--target-url", target,
            "--database", str(name), "--yes", *cat,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert [r["notification"] for r in rx.requests] == ["started", "done"]
    into = psycopg.conninfo.conninfo_to_dict(target)["dbname"]
    assert {(r["command"], r["database"]) for r in rx.requests} == {("backup restore", into)}
    assert rx.requests[1]["summary"].startswith("backup restore done in ")
    assert rx.token not in run.stdout + run.stderr
