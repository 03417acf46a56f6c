"""Ctrl-C and a killed `pgwarden upgrade run` process: the upgrade is resumable, or
cleanly cancelable from what `status` says (the real CLI in a subprocess, 15 -> 18)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.upgrade.run_support import (
    LogicalClusters,
    Pair,
    can_write,
    clean_cwd,
    leftovers,
    make_pair,
    run_args,
)

__all__ = ["clean_cwd"]

PGWARDEN = [sys.executable, "-m", "pgwarden"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PGWARDEN, "upgrade", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PGWARDEN, "upgrade", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float = 60) -> str:
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"never saw {needle!r}: {''.join(seen)}")


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper has finished)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_ctrl_c_then_run_again_resumes(logical_clusters, tmp_path: Path) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    args = run_args(pair, "--no-write-check")
    proc = _start(args, tmp_path)
    _wait_for_line(proc, "creating the publication")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "interrupted" in err and "continues it" in err
    status = _cli("status", "--database-url", pair.old_dsn, cwd=tmp_path)
    assert "interrupted" in status.stdout and "not running" in status.stdout, status.stdout
    # the local journal beside the operator has the run's events
    assert (tmp_path / ".pgwarden" / "upgrade-journal.jsonl").exists()
    again = _cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming upgrade" in again.stderr and "switched over" in again.stdout
    with psycopg.connect(pair.new_dsn) as c:
        assert c.execute("SELECT count(*) FROM orders").fetchone() == (2000,)


def test_killed_inside_the_switchover_is_cancelled_from_status(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    flag = tmp_path / "hook-started"
    moved = tmp_path / "application-moved"
    hook = f"echo $$ > {flag}; sleep 100; touch {moved}"
    proc = _start(run_args(pair, "--switchover-timeout", "120", "--switch-cmd", hook), tmp_path)
    deadline = time.monotonic() + 60
    while not flag.exists() or not flag.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    hook_pid = int(flag.read_text())
    named = "SELECT bool_or(info ? 'hook_process') FROM pgwarden_upgrade.runs"
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:  # the record names the hook
        while c.execute(named).fetchone() != (True,):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # pgwarden only: its hook (own session) keeps running
    proc.communicate(timeout=10)
    assert not can_write(pair.old_dsn)  # left read-only: the danger status must explain
    assert _alive(hook_pid)
    status = _cli("status", "--database-url", pair.old_dsn, cwd=tmp_path)
    assert "switching" in status.stdout and "not running" in status.stdout, status.stdout
    assert "upgrade cancel" in status.stdout and "--switch-cmd" in status.stdout
    assert "switch hook is still running here" in status.stdout
    cancel = _cli(
        "cancel",
        "--database-url",
        pair.old_dsn,
        "--target-url",
        pair.new_dsn,
        "--switch-cmd",
        "echo application back to $PGWARDEN_SWITCH_TO",
        cwd=tmp_path,
    )
    assert "application back to old" in cancel.stderr  # its hook had started: run back
    assert cancel.returncode == 0, cancel.stderr + cancel.stdout
    # the stray hook was ended first: it never moves the application to NEW afterwards
    assert "ended the switch hook" in cancel.stderr
    assert not _alive(hook_pid) and not moved.exists()
    _cancelled_cleanly(pair, tmp_path)


def test_cancel_from_another_terminal_stops_a_live_run(
    logical_clusters: LogicalClusters, tmp_path: Path
) -> None:
    """A run held up in its verification (a session on OLD holds a lock that keeps writes
    from pausing, without a transaction id) is stopped by `upgrade cancel` from another
    process: the run cleans up itself and exits 3; OLD is as it was."""
    pair = make_pair(logical_clusters, 15, 18)
    with psycopg.connect(pair.old_dsn) as blocker:
        blocker.execute("LOCK TABLE settings IN ROW EXCLUSIVE MODE")
        proc = _start(run_args(pair), tmp_path)
        _wait_for_line(proc, "comparing row counts")
        status = _cli("status", "--database-url", pair.old_dsn, cwd=tmp_path)
        assert "the upgrade is running" in status.stdout, status.stdout
        # without --target-url: the run, which knows NEW, removes everything itself
        cancel = _cli("cancel", "--database-url", pair.old_dsn, cwd=tmp_path)
        _out, err = proc.communicate(timeout=60)
        blocker.rollback()
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    # what the run removed is reported, and no warning that NEW's subscription was left
    assert "cancelled (by the run, which stopped): removed subscription" in cancel.stdout
    assert "NEW was not given" not in cancel.stdout, cancel.stdout
    assert proc.returncode == 3 and "cancelled: OLD is as it was" in err, err
    assert can_write(pair.old_dsn)
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}
    assert leftovers(pair.new_dsn)["subscriptions"] == []


def test_cancel_while_the_switch_hook_runs_undoes_the_switchover(
    logical_clusters: LogicalClusters, tmp_path: Path
) -> None:
    """`upgrade cancel` from another terminal while the run's hook moves the application:
    the run undoes its switchover (the hook runs back), then cleans up; it never ends
    switched with OLD made writable under an application on NEW."""
    pair = make_pair(logical_clusters, 15, 18)
    flag = tmp_path / "hook-started"
    hook = f'echo "to $PGWARDEN_SWITCH_TO" >> {flag}; [ "$PGWARDEN_SWITCH_TO" = old ] || sleep 3'
    proc = _start(
        run_args(pair, "--no-write-check", "--switchover-timeout", "60", "--switch-cmd", hook),
        tmp_path,
    )
    deadline = time.monotonic() + 60
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    cancel = _cli(
        "cancel", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn, cwd=tmp_path
    )
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert flag.read_text().split("\n")[:2] == ["to new", "to old"]  # the hook ran back
    _cancelled_cleanly(pair, tmp_path)


def test_ctrl_c_twice_during_the_hook_ends_it_and_says_what_is_left(
    logical_clusters: LogicalClusters, tmp_path: Path
) -> None:
    """A second Ctrl-C while the switch hook runs: the hook is ended with pgwarden (it
    would move the application later), the exit is 3 with the half-done switchover named
    (was: 'interrupted; nothing was left running', exit 2), and cancel undoes it."""
    pair = make_pair(logical_clusters, 15, 18)
    flag = tmp_path / "hook-pid"
    hook = f"echo $$ > {flag}; sleep 100"
    proc = _start(
        run_args(pair, "--no-write-check", "--switchover-timeout", "60", "--switch-cmd", hook),
        tmp_path,
    )
    deadline = time.monotonic() + 60
    while not flag.exists() or not flag.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    hook_pid = int(flag.read_text())
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "stopped inside its switchover (Ctrl-C twice)" in err and "nothing was left" not in err
    assert not _alive(hook_pid)
    assert not can_write(pair.old_dsn)  # as the message says: OLD read-only
    cancel = _cli(
        "cancel",
        "--database-url",
        pair.old_dsn,
        "--target-url",
        pair.new_dsn,
        "--switch-cmd",
        "true",
        cwd=tmp_path,
    )
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert can_write(pair.old_dsn)
    assert leftovers(pair.old_dsn) == {"slots": [], "publications": [], "subscriptions": []}


def test_ctrl_c_twice_before_the_switchover_leaves_it_interrupted(
    logical_clusters: LogicalClusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    with psycopg.connect(pair.old_dsn) as blocker:  # holds the run in its verification
        blocker.execute("LOCK TABLE settings IN ROW EXCLUSIVE MODE")
        proc = _start(run_args(pair), tmp_path)
        _wait_for_line(proc, "comparing row counts")
        proc.send_signal(signal.SIGINT)
        first = _wait_for_line(proc, "cancelling the running step")  # its 1 s retry wait
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        err = first + err
        blocker.rollback()
    assert proc.returncode == 3, err
    assert "(Ctrl-C twice)" in err and "continues it" in err, err
    assert "nothing was left running" not in err
    status = _cli("status", "--database-url", pair.old_dsn, cwd=tmp_path)
    assert "interrupted" in status.stdout and "not running" in status.stdout, status.stdout
    cancel = _cli(
        "cancel", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn, cwd=tmp_path
    )
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr


def _cancelled_cleanly(pair: Pair, cwd: Path) -> None:
    """OLD takes writes, neither side keeps a slot, publication or subscription, and the
    upgrade's state is `cancelled`."""
    empty: dict[str, list[str]] = {"slots": [], "publications": [], "subscriptions": []}
    assert can_write(pair.old_dsn)
    assert leftovers(pair.old_dsn) == empty
    assert leftovers(pair.new_dsn) == empty
    final = _cli("status", "--database-url", pair.old_dsn, "--format", "json", cwd=cwd)
    assert '"state":"cancelled"' in final.stdout.replace(" ", "")
