"""A black-holed network during CREATE INDEX CONCURRENTLY: apply ends by itself, Ctrl-C
escalates, and status / cancel / resume tell orphaned and interrupted runs apart.

Apply connects through `TcpProxy`; the test sees the truth on a direct connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden.demo import create_sample_schema
from pgwarden.pg.cluster import Cluster
from tests.apply.conftest import CIC_WAITING, INVALID, cli, scalar, wait_until, write_sql
from tests.apply.tcp_proxy import TcpProxy

CIC = "CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);"
SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM settings"
ORPHAN = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND state = 'active' AND query LIKE 'CREATE INDEX CONCURRENTLY%'"
)
VALID = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_created_at_idx'::regclass"


@pytest.fixture(scope="module")
def tcp_cluster() -> Iterator[Cluster]:
    with Cluster.start(tcp=True) as cluster:
        yield cluster


@pytest.fixture
def target(
    tcp_cluster: Cluster, request: pytest.FixtureRequest
) -> Iterator[tuple[str, str, TcpProxy]]:
    """(direct DSN, DSN through the proxy, the proxy) of a fresh shop database."""
    name = f"hang_{request.node.name[5:30]}"
    direct = tcp_cluster.create_database(name)
    with psycopg.connect(direct, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2_000, accounts_rows=100)
    with TcpProxy(tcp_cluster.port) as proxy:
        yield direct, proxy.dsn(name), proxy


ENV = {**os.environ, "COLUMNS": "500"}  # one line per message
# The watchdog's read timeout and status's "client gone" (defaults 30 s and 15 s), short
# so the tests do not wait them out; apply, status, cancel and resume read them from here.
UNREACHABLE_S = 3
CLIENT_GONE_S = 2
CONFIG = (
    "[environments.staging]\nprotected = false\n"
    f"[watchdog]\nunreachable_s = {UNREACHABLE_S}\nclient_gone_s = {CLIENT_GONE_S}\n"
)


def pgwarden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), capture_output=True, text=True, timeout=120, cwd=cwd, check=False, env=ENV
    )


def start_apply(dsn: str, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    return subprocess.Popen(
        cli(
            "apply",
            str(write_sql(tmp_path, CIC)),
            "--database-url",
            dsn,
            "--env",
            "staging",
            "--restamp",  # adopt the fresh database as staging
            "--no-file-transaction",
            "--lock-timeout-ms",
            "120000",
            "--journal-file",
            str(tmp_path / "journal.jsonl"),
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=ENV,
    )


def wait_for_build(direct: str, proc: subprocess.Popen[str]) -> None:
    """Until the build waits for the snapshot; fails with apply's output if it ended first."""
    deadline = time.monotonic() + 60
    while not scalar(direct, CIC_WAITING):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"the build never started (exit {proc.returncode}): {out}{err}")
        time.sleep(0.05)


def run_id(direct: str) -> str:
    return str(scalar(direct, "SELECT id FROM pgwarden.runs ORDER BY started_at DESC LIMIT 1"))


def test_black_holed_during_cic_apply_ends_by_itself_and_the_orphan_is_handled(
    target: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    direct, proxied, proxy = target
    snap = psycopg.connect(direct)
    snap.execute(SNAPSHOT)  # the build waits for this snapshot after creating its index
    proc = start_apply(proxied, tmp_path, "--reconnect-s", "1")  # one try to reconnect
    try:
        wait_for_build(direct, proc)
        proxy.blackhole()  # every connection, old and new: the server is unreachable
        t0 = time.monotonic()
        # a hang guard, not a timing assertion: without the watchdog's read timeout the
        # black-holed reads never return (the proxy's end of the socket keeps answering TCP)
        _out, err = proc.communicate(timeout=120)
        took = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "internal error" not in err
    assert "lost the connection" in err
    assert "could not be reached to check" in err and "may still be running" in err, err
    # what the message says is what the server shows: the build still runs, INVALID
    pid = scalar(direct, ORPHAN)
    assert pid is not None
    assert scalar(direct, INVALID) == 1
    rid = run_id(direct)
    print(f"apply ended {took:.0f} s after the black hole")

    status = pgwarden("status", "--database-url", direct, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"run {rid} [apply] orphaned" in status.stdout, status.stdout
    assert f"backend pid {pid} is running" in status.stdout

    refused = pgwarden("resume", "--database-url", direct, cwd=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert "client is gone" in refused.stderr
    assert f"pgwarden cancel --run {rid}" in refused.stderr

    nothing_live = pgwarden("cancel", "--database-url", direct, cwd=tmp_path)
    assert nothing_live.returncode == 2, nothing_live.stdout  # nothing to cancel: a usage error
    assert f"run {rid} is orphaned" in nothing_live.stderr
    assert scalar(direct, "SELECT state FROM pgwarden.runs") == "running"  # nothing marked

    ended = pgwarden("cancel", "--database-url", direct, "--run", rid, cwd=tmp_path)
    assert ended.returncode == 0, ended.stdout + ended.stderr
    assert "ended the session" in ended.stdout
    assert "index invoices_created_at_idx is INVALID" in ended.stdout, ended.stdout
    assert scalar(direct, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == 0
    assert scalar(direct, INVALID) == 1
    status = pgwarden("status", "--database-url", direct, cwd=tmp_path)
    assert f"run {rid} [apply] cancelled" in status.stdout

    snap.commit()
    snap.close()
    done = pgwarden("resume", "--database-url", direct, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert scalar(direct, INVALID) == 0
    assert scalar(direct, VALID) is True


def test_a_cut_off_connection_is_reconnected_its_orphan_ended_and_the_run_finished(
    target: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    """Only the open connections die (new ones work): apply ends its own orphaned backend,
    resumes, and the build is done once the snapshot is gone."""
    direct, proxied, proxy = target
    snap = psycopg.connect(direct)
    snap.execute(SNAPSHOT)
    proc = start_apply(proxied, tmp_path, "--reconnect-s", "30")
    try:
        wait_for_build(direct, proc)
        first = scalar(direct, ORPHAN)
        proxy.blackhole(new_connections=False)
        wait_until(  # resumed: a new backend builds, the old one was ended
            direct,
            f"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {first}) "
            f"AND EXISTS ({ORPHAN} AND pid <> {first})",
            timeout_s=120,
        )
        snap.commit()
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        snap.close()
    assert proc.returncode == 0, err
    assert "connection lost" in err and "server is back" in err
    assert scalar(direct, INVALID) == 0
    assert scalar(direct, VALID) is True
    states = scalar(direct, "SELECT array_agg(state ORDER BY started_at) FROM pgwarden.runs")
    assert states == ["running", "done"]
    status = pgwarden("status", "--database-url", direct, cwd=tmp_path)
    assert "[apply] resumed" in status.stdout, status.stdout  # not "interrupted" for ever


def test_ctrl_c_cancels_then_ends_the_backend_and_says_what_it_left(
    target: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    direct, proxied, proxy = target
    snap = psycopg.connect(direct)
    snap.execute(SNAPSHOT)
    proc = start_apply(proxied, tmp_path)
    try:
        wait_for_build(direct, proc)
        pid = scalar(direct, ORPHAN)
        proxy.blackhole(new_connections=False)  # its watchdog cannot cancel any more
        proc.send_signal(signal.SIGINT)
        # the first Ctrl-C cancels the build through a new connection
        wait_until(direct, f"SELECT state <> 'active' FROM pg_stat_activity WHERE pid = {pid}")
        assert scalar(direct, INVALID) == 1  # the cancelled build's index: cleanup is cut off
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        snap.close()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    rid = run_id(direct)
    assert f"run {rid} interrupted: ended the run's backend" in err, err
    assert "index invoices_created_at_idx is INVALID" in err
    # checked, not assumed: the backend is gone and the index is INVALID
    assert scalar(direct, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == 0
    assert scalar(direct, INVALID) == 1
    assert scalar(direct, "SELECT state FROM pgwarden.runs") == "cancelled"
    assert '"event":"cancelled"' in (tmp_path / "journal.jsonl").read_text()


def test_a_third_ctrl_c_exits_at_once(target: tuple[str, str, TcpProxy], tmp_path: Path) -> None:
    direct, proxied, proxy = target
    snap = psycopg.connect(direct)
    snap.execute(SNAPSHOT)
    proc = start_apply(proxied, tmp_path)
    try:
        wait_for_build(direct, proc)
        proxy.blackhole()  # nothing answers: the cancel and the terminate wait to connect
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)  # at once, not after the connect timeout
    finally:
        proc.kill()
        snap.close()
    assert proc.returncode == 3, err
    assert "aborted at once; what the step left was not checked" in err, err
    assert "nothing was left running" not in err


def test_an_idle_orphan_is_nothing_to_cancel_and_resume_ends_it(
    target: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    """The client is killed after its build was cancelled: its backend stays, idle, behind the
    dead link (holding the apply lock). cancel has nothing to cancel; resume ends it."""
    direct, proxied, proxy = target
    snap = psycopg.connect(direct)
    snap.execute(SNAPSHOT)
    proc = start_apply(proxied, tmp_path)
    try:
        wait_for_build(direct, proc)
        pid = scalar(direct, ORPHAN)
        proxy.blackhole(new_connections=False)
        proc.send_signal(signal.SIGINT)  # cancelled through a new connection
        wait_until(direct, f"SELECT state = 'idle' FROM pg_stat_activity WHERE pid = {pid}")
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    rid = run_id(direct)
    wait_until(  # the client's heartbeat goes stale
        direct,
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name "
        "LIKE 'pgwarden-watchdog %' AND state_change > now() - "
        f"interval '{CLIENT_GONE_S + 1} s')",
    )
    status = pgwarden("status", "--database-url", direct, cwd=tmp_path)
    assert f"run {rid} [apply] orphaned" in status.stdout, status.stdout
    assert f"backend pid {pid} is idle" in status.stdout
    # fleet status reads the same setting (a target's run in progress, orphaned)
    with (tmp_path / "pgwarden.toml").open("a") as f:
        f.write('[fleet.one]\ntargets = [{ name = "t1", dsn_env = "T1_URL" }]\n')
    fleet = subprocess.run(
        cli("fleet", "status", "--fleet", "one"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
        env={**ENV, "T1_URL": direct},
    )
    assert f"{rid}" in fleet.stdout and "orphaned" in fleet.stdout, fleet.stdout + fleet.stderr

    nothing = pgwarden("cancel", "--database-url", direct, "--run", rid, cwd=tmp_path)
    assert nothing.returncode == 2, nothing.stdout  # nothing to cancel: a usage error
    assert "nothing to cancel" in nothing.stderr and f"backend pid {pid} is idle" in nothing.stderr
    assert scalar(direct, f"SELECT state FROM pg_stat_activity WHERE pid = {pid}") == "idle"

    snap.commit()
    snap.close()
    done = pgwarden("resume", "--database-url", direct, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert scalar(direct, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") == 0
    assert scalar(direct, INVALID) == 0
    assert scalar(direct, VALID) is True
