"""The first Ctrl-C of `pgwarden apply` says what it really stops.

It always said "cancelling the running step", also while apply was still connecting
(nothing runs, nothing has changed) or between two steps.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.cli.interaction import run_observer
from pgwarden.cli.interrupts import Interrupts
from pgwarden.events import Event, fan_out
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import cli, plan_of, wait_until, write_sql
from tests.apply.tcp_proxy import TcpProxy

RUNNING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND query LIKE 'SELECT pg_sleep%')"
)
CONFIG = "[environments.staging]\nprotected = false\n"


@pytest.fixture(scope="module")
def tcp_cluster() -> Iterator[Cluster]:
    with Cluster.start(tcp=True) as cluster:
        yield cluster


def _apply(dsn: str, tmp_path: Path, sql: str) -> subprocess.Popen[str]:
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    path = write_sql(tmp_path, sql)
    return subprocess.Popen(
        cli("apply", str(path), "--database-url", dsn, "--env", "staging", "--restamp"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def _press_and_read(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C once; (the line it printed, all of stderr once the command ended)."""
    assert proc.stderr is not None
    proc.send_signal(signal.SIGINT)
    said = ""
    for line in proc.stderr:
        if "Ctrl-C again" in line:
            said = line
            break
    return said, said + proc.stderr.read()


def test_while_connecting_nothing_has_started(tcp_cluster: Cluster, tmp_path: Path) -> None:
    name = "ctrl_c_connecting"
    tcp_cluster.create_database(name)
    with TcpProxy(tcp_cluster.port) as proxy:
        proxy.blackhole()  # the connection is accepted, the server never answers
        proc = _apply(proxy.dsn(name) + " connect_timeout=120", tmp_path, "CREATE TABLE t ();\n")
        try:
            deadline = time.monotonic() + 60
            while not proxy._pairs:  # apply is connecting
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            assert proc.stderr is not None
            proc.send_signal(signal.SIGINT)
            said = proc.stderr.readline()
            proc.send_signal(signal.SIGINT)  # the second press ends it: nothing ran
            rest = proc.stderr.read()
            assert proc.wait(60) == 2, said + rest
        finally:
            proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
    assert "stopping before the run starts: nothing has changed" in said, said
    assert "running step" not in said
    assert "interrupted before the run started: nothing was changed" in rest, rest


def test_while_a_step_runs_it_names_the_step(db: str, tmp_path: Path) -> None:
    proc = _apply(db, tmp_path, "CREATE TABLE t ();\nSELECT pg_sleep(600);\n")
    try:
        wait_until(db, RUNNING)
        said, text = _press_and_read(proc)
        assert proc.wait(60) == 3, text
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert "cancelling the running steps 0-1 (one transaction)" in said, text
    with psycopg.connect(db) as c:  # the file's transaction was rolled back
        assert c.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_between_steps_it_stops_before_the_next(db: str, tmp_path: Path) -> None:
    """What the first press would say at each of a real run's events."""
    interrupts = Interrupts(threading.Event(), db, None)
    said: list[tuple[str, str]] = []

    def at(event: Event) -> None:
        said.append((event.kind, interrupts.stopping()))

    path = write_sql(tmp_path, "CREATE TABLE a ();\nCREATE TABLE b ();\n")
    result = apply_plan(
        plan_of(path, file_transaction=False),
        database_url=db,
        policy=GuardPolicy(env="staging", restamp=True),
        settings=Settings(environments={"staging": Environment("staging")}),
        observer=fan_out([run_observer(interrupts), at]),
    )
    assert result.state == "done"
    run = [(kind, text) for kind, text in said if kind.startswith(("run_", "step_"))]
    assert run == [
        ("run_started", BETWEEN),
        ("step_started", "cancelling the running step 0"),
        ("step_done", BETWEEN),
        ("step_started", "cancelling the running step 1"),
        ("step_done", BETWEEN),
        ("run_finished", "stopping: the run is ending"),
    ]


BETWEEN = "stopping before the next step starts (the steps done stay applied)"
