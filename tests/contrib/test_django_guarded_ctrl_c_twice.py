"""A second Ctrl-C while a guarded SQL part of `manage.py pgwarden migrate` runs ends the step's
server backend, as during `pgwarden apply` (tests/apply/test_hang.py).

Django connects through `TcpProxy`; the test sees the truth on a direct connection. The
migration's statement blocks (pg_sleep); the proxy then black-holes the run's connections,
so the run cannot react to the first Ctrl-C (its watchdog cannot cancel, the executor waits
for a reply for ever). The first press cancels the statement through a new connection; the
second ends the backend through a new connection, records the run as cancelled and exits 3
with one message. It used to raise KeyboardInterrupt into the executor stuck on its dead
connection, and hang.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from tests.apply.tcp_proxy import TcpProxy
from tests.contrib.django_site import project_env, running, write_project

pytest.importorskip("django")

BLOCKS = """
from django.db import migrations

class Migration(migrations.Migration):
    initial = True
    operations = [migrations.RunSQL("SELECT pg_sleep(300)", migrations.RunSQL.noop)]
"""

STEP = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND query LIKE 'SELECT pg_sleep%'"
)


@pytest.fixture(scope="module")
def tcp_cluster() -> Iterator[Cluster]:
    with Cluster.start(tcp=True) as cluster:
        yield cluster


def _scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(query).fetchone()
        return row[0] if row else None


def _wait(dsn: str, query: str, proc: subprocess.Popen[str], err: Path) -> Any:
    deadline = time.monotonic() + 60
    while not (value := _scalar(dsn, query)):
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    return value


def test_second_ctrl_c_in_a_guarded_part_ends_the_backend(
    tcp_cluster: Cluster, tmp_path: Path
) -> None:
    direct = tcp_cluster.create_database("django_ctrl_c_guarded")
    write_project(tmp_path, "slow", {"0001_blocks.py": BLOCKS})
    err, journal = tmp_path / "stderr.txt", tmp_path / "j.jsonl"
    with TcpProxy(tcp_cluster.port) as proxy:
        dsn = proxy.dsn("django_ctrl_c_guarded")
        env = project_env(tmp_path, dsn, COLUMNS="500")  # COLUMNS: one line per message
        args = ["pgwarden", "migrate", "--env", "test", "--yes", "--journal-file", str(journal)]
        args += ["--statement-timeout-ms", "600000"]
        with running(tmp_path, env, args, err) as proc:
            pid = _wait(direct, STEP, proc, err)
            proxy.blackhole(new_connections=False)  # the run's own connections are dead
            proc.send_signal(signal.SIGINT)
            # the first Ctrl-C cancels the statement through a new connection
            _wait(direct, f"SELECT state <> 'active' FROM pg_stat_activity WHERE pid = {pid}",
                  proc, err)  # fmt: skip
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
    text = err.read_text()
    assert proc.returncode == 3, out + text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    rid = _scalar(direct, "SELECT id FROM pgwarden.runs")
    assert f"run {rid} interrupted: ended the run's backend" in text, text
    assert "hint: run `manage.py pgwarden migrate` again to continue" in text, text
    # checked, not assumed: the backend is gone and the run is recorded as cancelled
    assert _scalar(direct, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == 0
    assert _scalar(direct, "SELECT state FROM pgwarden.runs") == "cancelled"
    assert '"event":"cancelled"' in journal.read_text()
    assert _scalar(direct, "SELECT count(*) FROM django_migrations WHERE app = 'slow'") == 0
