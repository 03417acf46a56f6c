"""The migrations Django's executor runs inside `manage.py pgwarden migrate` are guarded.

tests/contrib/django_multi: beta 0003 (AddField, RunPython, AlterField) runs
through Django's executor. Its AddField needs ACCESS EXCLUSIVE on beta_book; a
session holding SHARE keeps it waiting. Like a guarded SQL statement, the
watchdog cancels it as soon as sessions queue behind it, and Ctrl-C cancels it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from tests.contrib.test_django_upgrades import PROJECT, SRC, pgwarden_migrate, released
from tests.fixtures.pg import new_database

pytest.importorskip("django")


def start(dsn: str, tmp: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    err = tmp / "stderr.txt"
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=dsn, MULTISITE_CONTRIB="")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT / "manage.py"), "pgwarden", "migrate", "--env", "test",
             "--yes", "--journal-file", str(tmp / "journal.jsonl"), *args],
            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=sink, text=True,
        )  # fmt: skip
    return proc, err


def wait_for(check: Any, proc: subprocess.Popen[str], err: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)


def django_waits(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        'AND query LIKE \'ALTER TABLE "beta_book" ADD COLUMN "editor_id"%\''
    ).fetchone()
    return row is not None and row[0] > 0


def up_to_python_part(db: str, conn: psycopg.Connection[Any], tmp: Path) -> None:
    """Released, then alpha and beta 0002 applied: the next migration is beta 0003."""
    released(db, conn)
    for target in (("alpha", "--restamp"), ("beta", "0002")):
        done = pgwarden_migrate(db, tmp, *target)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def before_0003(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database for the two cancel tests: released, alpha and beta 0002 applied by
    pgwarden. The Ctrl-C test leaves it as it found it (it checks that); the watchdog
    test then applies the rest."""
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as conn:
        up_to_python_part(dsn, conn, tmp_path_factory.mktemp("before_0003"))
    return dsn


@pytest.fixture
def conn_0003(before_0003: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(before_0003, autocommit=True) as conn:
        yield conn


def recorded(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM django_migrations WHERE app = 'beta' AND name = %s", [name]
    ).fetchone()
    return row == (1,)


def test_ctrl_c_cancels_a_python_migration(
    before_0003: str, conn_0003: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Ctrl-C while beta 0003 (run by Django's executor) waits for its lock: the statement is
    cancelled, the migration rolls back with its django_migrations row, and the command
    exits 3 with one message, not a KeyboardInterrupt traceback."""
    db, conn = before_0003, conn_0003
    with psycopg.connect(db) as blocker:
        blocker.execute("LOCK TABLE beta_book IN SHARE MODE")
        proc, err = start(db, tmp_path, "--lock-timeout-ms", "60000")
        try:
            wait_for(lambda: django_waits(conn), proc, err)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)  # well before the 60 s lock_timeout
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert not django_waits(conn)
    text = err.read_text()
    assert proc.returncode == 3, out + text
    assert "beta.0003_book_editor failed in Django's executor: cancelled (Ctrl-C" in text
    assert "Traceback" not in text
    assert not recorded(conn, "0003_book_editor")
    columns = conn.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'beta_book' AND column_name = 'editor_id'"
    ).fetchone()
    assert columns == (0,)


def test_watchdog_cancels_a_python_migration_that_traffic_queues_behind(
    before_0003: str, conn_0003: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """beta 0003 waits for its lock (lock_timeout 60 s); readers queue behind its request.
    The watchdog cancels it within its limits (not after 60 s), the readers go on, the
    atomic migration rolled back and is retried, and it completes once the lock is free
    (was: Django's connection unwatched, every reader stuck for the whole lock_timeout)."""
    db, conn = before_0003, conn_0003
    done = threading.Event()
    finished: list[float] = []

    def reader() -> None:
        with psycopg.connect(db, autocommit=True) as c:
            c.execute("SELECT count(*) FROM beta_book")
            finished.append(time.monotonic())
        done.set()

    with psycopg.connect(db) as blocker:
        blocker.execute("LOCK TABLE beta_book IN SHARE MODE")
        proc, err = start(db, tmp_path, "--lock-timeout-ms", "60000")
        try:
            wait_for(lambda: django_waits(conn), proc, err)
            readers = [threading.Thread(target=reader) for _ in range(4)]
            for t in readers:
                t.start()
            wait_for(lambda: "cancelled by the watchdog" in err.read_text(), proc, err)
            for t in readers:
                t.join(timeout=60)
            assert len(finished) == 4  # they were not left behind the waiting ALTER
            assert not recorded(conn, "0003_book_editor")
            assert proc.poll() is None, err.read_text()  # retrying, not failed
            blocker.rollback()
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = err.read_text()
    assert proc.returncode == 0, out + text
    assert "beta.0003_book_editor: cancelled by the watchdog" in text
    assert "while it was waiting for a lock" in text and "retry 1/" in text
    assert recorded(conn, "0003_book_editor") and recorded(conn, "0004_shelf")
