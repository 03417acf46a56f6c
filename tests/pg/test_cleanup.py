"""A throwaway cluster never outlives the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pgwarden.pg.cluster import Cluster, sweep_orphans

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper counts as dead
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, root: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (_alive(pid) or root.exists()):
        time.sleep(0.05)
    assert not _alive(pid), f"postmaster {pid} still running"
    assert not root.exists(), f"{root} still exists"


def _start_script(body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        """
        import sys, time
        from pgwarden.pg.cluster import Cluster
        c = Cluster.start()
        print(c.root, c.pid, flush=True)
        """
    ) + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _started(proc: subprocess.Popen[str]) -> tuple[Path, int]:
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line, proc.stderr.read() if proc.stderr else "no output"
    return Path(line[0]), int(line[1])


def test_context_manager_stops_and_removes():
    with Cluster.start() as c:
        root, pid = c.root, c.pid
        assert _alive(pid)
    _wait_gone(pid, root)


def test_exception_inside_block_still_cleans_up():
    seen: list[Cluster] = []

    def crash() -> None:
        with Cluster.start() as c:
            seen.append(c)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        crash()
    root, pid = seen[0].root, seen[0].pid
    _wait_gone(pid, root)


def test_normal_process_exit_without_stop():
    proc = _start_script("")
    root, pid = _started(proc)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    _wait_gone(pid, root)


def test_ctrl_c():
    proc = _start_script("time.sleep(120)")
    root, pid = _started(proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    _wait_gone(pid, root)


def test_sigkill_of_owner_kills_server_and_next_start_sweeps():
    proc = _start_script("time.sleep(120)")
    root, pid = _started(proc)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "server survived its owner's SIGKILL"
    assert root.exists()  # nobody could clean up after SIGKILL ...
    assert root in sweep_orphans()  # ... the next start sweeps it
    assert not root.exists()


def test_failing_test_in_a_pytest_run_cleans_up(tmp_path: Path):
    marker = tmp_path / "cluster.txt"
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            def test_fails(pg_cluster):
                open({str(marker)!r}, "w").write(f"{{pg_cluster.root}} {{pg_cluster.pid}}")
                assert False, "intended failure"
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.fixtures.pg",
            str(test_file),
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "intended failure" in result.stdout
    root_s, pid_s = marker.read_text().split()
    _wait_gone(int(pid_s), Path(root_s))
