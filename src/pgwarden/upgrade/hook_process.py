"""The switch hook's process group, kept in the record so that a later pgwarden can end it.

The hook runs in a session of its own (so that a timeout kills all of it). A
`pgwarden upgrade run` killed while its hook runs (kill -9, the machine's OOM
killer) leaves the hook running: it could move the application to NEW after
`upgrade cancel` has undone the switchover and made OLD writable again, and the
application's writes would go to a NEW that no longer replicates. The record
keeps the hook's host, process group and start time; `cancel` and a resumed
`run` end that group before undoing the switchover when it still runs on their
host (the start time tells it from a later process that got the same id).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path
from typing import Any

__all__ = ["describe", "running", "stop"]


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished
        return None
    return int(fields[19])


def describe(pid: int) -> dict[str, Any]:
    """What the record keeps of the hook started as `pid` (its process group leader)."""
    return {"host": socket.gethostname(), "pgid": pid, "start": _start_ticks(pid)}


def running(info: object) -> bool | None:
    """Whether the recorded hook still runs: None when it ran on another host (unknown)."""
    if not isinstance(info, dict) or not isinstance(info.get("pgid"), int):
        return False
    if info.get("host") != socket.gethostname():
        return None
    start = _start_ticks(int(info["pgid"]))
    return start is not None and start == info.get("start")


def stop(info: object) -> bool:
    """End the recorded hook's process group (SIGKILL) if it still runs here; whether it did."""
    if running(info) is not True:
        return False
    assert isinstance(info, dict)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(int(info["pgid"]), signal.SIGKILL)
        return True
    return False
