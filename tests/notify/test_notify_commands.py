"""`pgwarden rehearse` and `pgwarden backup create` notify a real receiver too: a step that
fails on the rehearsal copy is `failed`, a backup is `started` then `done`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.notify.receiver import receiver

CONFIG = '[[notify.webhooks]]\nurl_env = "HOOK_URL"\nformat = "json"\n'


def _pgwarden(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "500", "HOOK_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
        check=False,
    )


def test_rehearse_with_a_failing_step_notifies_failed(tmp_path: Path) -> None:
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int PRIMARY KEY);\n")
    (tmp_path / "002.sql").write_text("ALTER TABLE t ADD COLUMN c int;\nSELECT 1/0;\n")
    with receiver() as rx:
        run = _pgwarden(tmp_path, rx.url, "rehearse", "002.sql", "--schema", "schema.sql")
    assert run.returncode == 1, run.stderr
    assert [r["notification"] for r in rx.requests] == ["started", "failed"]
    failed = rx.requests[1]
    assert failed["command"] == "rehearse" and failed["event"] is None
    assert "a step failed on the copy: SELECT 1/0" in failed["summary"]
    assert rx.token not in run.stdout + run.stderr


def test_backup_create_notifies_started_and_done(db: str, tmp_path: Path) -> None:
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
    with receiver() as rx:
        run = _pgwarden(
            tmp_path, rx.url, "backup", "create", "--database-url", db, "--catalogue", "cat"
        )
    assert run.returncode == 0, run.stderr
    assert [r["notification"] for r in rx.requests] == ["started", "done"]
    dbname = psycopg.conninfo.conninfo_to_dict(db)["dbname"]
    assert {(r["command"], r["database"]) for r in rx.requests} == {("backup create", dbname)}
    assert rx.requests[1]["summary"].startswith("backup create done in ")


def test_backfill_notifies_started_and_done(db: str, tmp_path: Path) -> None:
    from pgwarden.apply.identity import stamp_database

    (tmp_path / "pgwarden.toml").write_text(
        "[environments.staging]\nprotected = false\n\n" + CONFIG
    )
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        c.execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 500) g")
        stamp_database(c, "staging", protected=False, by="notify-tests")
    with receiver() as rx:
        run = _pgwarden(
            tmp_path,
            rx.url,
            "backfill",
            "--database-url",
            db,
            "--env",
            "staging",
            "--table",
            "t",
            "--set",
            "v = 1",
            "--batch-size",
            "100",
            "--no-health-gate",
        )
    assert run.returncode == 0, run.stderr
    kinds = [r["notification"] for r in rx.requests]
    assert kinds[0] == "started" and kinds[-1] == "done", kinds
    assert {(r["command"], r["environment"]) for r in rx.requests} == {("backfill", "staging")}
