"""`pgwarden apply` notifies a real webhook receiver: started, stuck, failed for a run
that waits behind an ACCESS EXCLUSIVE lock until its lock budget runs out, then started
and done once the lock is gone; a dead receiver changes nothing but one warning line.

Every run is the real CLI in a subprocess against a real cluster.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden.pg.cluster import Cluster
from tests.notify.receiver import closed_port, receiver

MIGRATION = "ALTER TABLE t ADD COLUMN c int;\n"
CONFIG = """\
[environments.staging]
protected = false
"""
NOTIFY = """
[notify]
stuck_after_s = 1
progress_every_s = 1
exit_wait_s = {wait}

[[notify.webhooks]]
url_env = "HOOK_URL"
"""


def _database(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY)")
    return db


def _apply(
    folder: Path, dsn: str, url: str | None, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "500"}
    env.pop("HOOK_URL", None)
    if url is not None:
        env["HOOK_URL"] = url
    (folder / "001.sql").write_text(MIGRATION)
    argv = [sys.executable, "-m", "pgwarden", "apply", "001.sql", "--database-url", dsn]
    argv += ["--env", "staging", "--restamp", "--journal-file", "journal.jsonl", *extra]
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=folder, env=env, timeout=180, check=False
    )


def _journal_text(dsn: str) -> str:
    """Every row of every table in the pgwarden schema, as text."""
    with psycopg.connect(dsn, autocommit=True) as c:
        tables = [
            str(r[0])
            for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'pgwarden'")
        ]
        assert tables
        query = sql.SQL("SELECT row_to_json(x)::text FROM pgwarden.{} x")
        return "\n".join(
            str(row) for t in tables for row in c.execute(query.format(sql.Identifier(t)))
        )


def test_apply_behind_a_lock_notifies_started_stuck_failed_then_done(
    db: str, tmp_path: Path
) -> None:
    dsn = _database(db)
    (tmp_path / "pgwarden.toml").write_text(CONFIG + NOTIFY.format(wait=5))
    holder = psycopg.connect(dsn, application_name="lock-holder")
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    with receiver() as rx:
        try:
            failed = _apply(
                tmp_path, dsn, rx.url, "--lock-timeout-ms", "100", "--lock-budget-s", "4"
            )
        finally:
            holder.rollback()
            holder.close()
        first = list(rx.requests)
        done = _apply(tmp_path, dsn, rx.url)
        second = rx.requests[len(first) :]

    assert failed.returncode == 3, failed.stderr
    kinds = [r["notification"] for r in first]
    assert kinds[0] == "started" and kinds[-1] == "failed", kinds
    assert "stuck" in kinds and set(kinds) <= {"started", "progress", "stuck", "failed"}, kinds
    started, stuck, end = first[0], first[kinds.index("stuck")], first[-1]
    dbname = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    for body in first:
        assert body["format"] == "pgwarden-notify/1"
        assert (body["command"], body["environment"], body["database"]) == (
            "apply",
            "staging",
            dbname,
        )
        assert body["host"] == socket.gethostname()
        assert "postgres" not in str(body["server"])  # the user is left out
    assert started["event"]["event"] == "run_started" and started["event"]["statements"] == 1
    assert stuck["reason"] == "no_progress" and stuck["stalled_s"] >= 1
    assert "no progress" in stuck["summary"] and "retry" in stuck["summary"], stuck
    # who is in the way: the holder's session and its lock
    assert "in the way: pid" in stuck["summary"] and "lock-holder" in stuck["summary"], stuck
    assert "AccessExclusiveLock on t" in stuck["summary"], stuck
    assert end["event"]["event"] == "run_finished" and end["event"]["state"] == "failed"
    assert "lock" in end["summary"], end
    assert end["run_id"] == started["run_id"] == stuck["run_id"]

    assert done.returncode == 0, done.stderr
    assert [r["notification"] for r in second] == ["started", "done"], second
    assert (
        second[1]["summary"].startswith("apply done in")
        and "1 step applied" in (second[1]["summary"])
    )

    # The webhook URL is a secret: in no output, journal or request path shown anywhere.
    journal = (tmp_path / "journal.jsonl").read_text()
    for text in (failed.stdout, failed.stderr, done.stdout, done.stderr, journal):
        assert rx.token not in text and str(rx.port) not in text
    assert rx.token not in _journal_text(dsn)


def _normalized(text: str, dbname: str) -> list[str]:
    text = re.sub(r"\d{8}T\d{6}-[0-9a-f]+", "RUN", text).replace(dbname, "DB")
    text = re.sub(r"system \d+", "system N", text)
    text = re.sub(r"in \d+\.\d+ s", "in N s", text)
    return text.splitlines()


@pytest.fixture(scope="module")
def baseline(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], str]:
    """The same apply without notifications: (its run, its database name)."""
    plain_dir = tmp_path_factory.mktemp("plain")
    (plain_dir / "pgwarden.toml").write_text(CONFIG)
    plain_dsn = _database(pg_cluster.create_database("notify_plain"))
    return _apply(plain_dir, plain_dsn, None), str(
        psycopg.conninfo.conninfo_to_dict(plain_dsn)["dbname"]
    )


@pytest.mark.parametrize("dead", ["closed", "hang"])
def test_a_dead_receiver_changes_nothing_but_one_warning_line(
    baseline: tuple[subprocess.CompletedProcess[str], str], db: str, tmp_path: Path, dead: str
) -> None:
    baseline_run, plain_db = baseline
    notified_dir = tmp_path / "notified"
    notified_dir.mkdir()
    (notified_dir / "pgwarden.toml").write_text(CONFIG + NOTIFY.format(wait=1))
    dsn = _database(db)
    if dead == "closed":
        url = f"http://127.0.0.1:{closed_port()}/hooks/T0KEN-dead-4711"
        run = _apply(notified_dir, dsn, url)
        token = "T0KEN-dead-4711"
    else:
        with receiver("hang") as rx:
            run = _apply(notified_dir, dsn, rx.url)
            token = rx.token
            assert rx.requests and rx.requests[0]["notification"] == "started"

    assert baseline_run.returncode == run.returncode == 0, run.stderr
    dbname = str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    assert _normalized(run.stdout, dbname) == _normalized(baseline_run.stdout, plain_db)
    extra = _normalized(run.stderr, dbname)
    for line in _normalized(baseline_run.stderr, plain_db):
        extra.remove(line)
    assert len(extra) == 1, run.stderr
    assert extra[0].startswith("warning: ") and "not delivered to webhook #1 (HOOK_URL)" in extra[0]
    want = "connection refused" if dead == "closed" else "no answer"
    assert want in extra[0], extra
    assert token not in run.stdout + run.stderr


def test_ctrl_c_during_a_lock_wait_notifies_cancelled(db: str, tmp_path: Path) -> None:
    import signal

    dsn = _database(db)
    (tmp_path / "pgwarden.toml").write_text(CONFIG + NOTIFY.format(wait=5))
    (tmp_path / "001.sql").write_text(MIGRATION)
    holder = psycopg.connect(dsn, application_name="lock-holder")
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    try:
        with receiver() as rx:
            argv = [sys.executable, "-m", "pgwarden", "apply", "001.sql", "--database-url", dsn]
            argv += ["--env", "staging", "--restamp", "--journal-file", "journal.jsonl"]
            proc = subprocess.Popen(
                argv,
                cwd=tmp_path,
                env={**os.environ, "HOOK_URL": rx.url, "COLUMNS": "500"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                rx.wait_for("started")
                proc.send_signal(signal.SIGINT)  # Ctrl-C: the step is cancelled cleanly
                _out, err = proc.communicate(timeout=120)
            finally:
                proc.kill()
            kinds = rx.kinds()
            cancelled = rx.wait_for("cancelled", timeout_s=0)
    finally:
        holder.close()
    assert proc.returncode == 3, err
    assert kinds[0] == "started" and kinds[-1] == "cancelled", kinds
    assert "failed" not in kinds and "done" not in kinds
    assert cancelled["event"]["event"] == "run_finished" and cancelled["summary"].startswith(
        "apply cancelled after"
    )
