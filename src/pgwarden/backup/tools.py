"""Running pg_dump / pg_restore: the right version, killed with pgwarden on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pgwarden.errors import PostgresNotFound
from pgwarden.pg.binaries import Installation, find_installation, find_installations

__all__ = ["ToolFailed", "installation_for", "run_tool", "stream_process", "tool_version"]

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\S+)")


class ToolFailed(Exception):
    """A client program exited non-zero; carries its stderr tail."""

    def __init__(self, program: str, code: int, stderr: str) -> None:
        super().__init__(f"{program} exited with code {code}")
        self.program = program
        self.code = code
        self.stderr = stderr

    @property
    def last_error(self) -> str:
        """The most telling line of stderr."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        tagged = [ln for ln in lines if ": error:" in ln]  # 'pg_restore: error: ...'
        errors = [ln for ln in lines if "error" in ln.lower() or "could not" in ln.lower()]
        return (tagged or errors or lines or [f"{self.program} exited with code {self.code}"])[0]


def installation_for(major: int) -> Installation:
    """The installation whose major is the smallest one >= `major` (client tools are
    backward compatible, never forward)."""
    if os.environ.get("PGWARDEN_PG_BINDIR"):
        inst = find_installation()
        if inst.major >= major:
            return inst
    candidates = sorted(
        (i for i in find_installations() if i.major >= major), key=lambda i: i.major
    )
    if not candidates:
        have = ", ".join(str(i) for i in find_installations()) or "none"
        raise PostgresNotFound(
            f"no PostgreSQL {major} or newer client tools found (found: {have})",
            hint=f"install PostgreSQL {major}'s client and server packages, or "
            "`pip install 'pgwarden[server]'`, or set PGWARDEN_PG_BINDIR",
        )
    return candidates[0]


def tool_version(inst: Installation, program: str) -> str:
    """The version a client program reports, e.g. '17.2'."""
    out = subprocess.run(
        [str(inst.tool(program)), "--version"], capture_output=True, text=True, check=False
    ).stdout
    m = _VERSION_RE.search(out)
    return m.group(1) if m else out.strip()


def stream_process(
    args: Sequence[str],
    on_line: Callable[[str], None],
    *,
    merge_stdout: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> int:
    """Run a program in its own process group, passing each line of its stderr (with
    `merge_stdout`: of its stdout and stderr; else stdout is discarded) to `on_line`,
    newline included; its exit code.

    On any exception (Ctrl-C included, or one raised by `on_line`) the whole group is
    killed and reaped before the exception propagates.
    """
    with _sigint_deferred() as deferred:  # a Ctrl-C while the child starts: handled below
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if merge_stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if merge_stdout else subprocess.PIPE,
            text=True,
            errors="replace",
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
        )
    pipe = proc.stdout if merge_stdout else proc.stderr
    try:
        if deferred:
            signal.raise_signal(signal.SIGINT)  # now, with the child there to kill
        assert pipe is not None
        for line in pipe:
            on_line(line)
        return proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_group_gone(proc.pid)
        raise
    finally:
        if pipe is not None:
            pipe.close()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[list[int]]:
    """Hold a Ctrl-C back while a child is being started: raised inside Popen, it would
    leave the child running with no one to kill it. Yields the list the held signals go
    to (the caller raises them again once it can kill the child). Main thread only."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler not set from Python: leave it be
        yield held
        return
    signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_group_gone(pgid: int, timeout_s: float = 5.0) -> None:
    """Wait (at most `timeout_s`) until no live process is left in group `pgid`: SIGKILL is
    delivered asynchronously, and the leader's children (pg_restore's --jobs workers) are
    not ours to reap, so they may still be dying when the leader has been reaped."""
    deadline = time.monotonic() + timeout_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is alive (not a zombie), from /proc (Linux)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        # after the command name: state, ppid, pgrp
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def run_tool(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> str:
    """Run a program in its own process group, streaming stderr lines to `on_line`.

    On any exception (Ctrl-C included) the whole group is killed and reaped before
    the exception propagates. Raises ToolFailed on a non-zero exit; returns stderr.
    """
    lines: list[str] = []

    def take(line: str) -> None:
        lines.append(line)
        if len(lines) > 2000:
            del lines[:1000]
        if on_line is not None:
            on_line(line.rstrip("\n"))

    code = stream_process(args, take, env=env, user=user, group=group)
    stderr = "".join(lines)
    if code != 0:
        raise ToolFailed(os.path.basename(args[0]), code, stderr)
    return stderr
