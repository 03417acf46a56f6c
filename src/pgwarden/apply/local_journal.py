"""The local journal: every event of a run as one JSON line in a file beside the operator.

Each line is one `os.write` to a file opened with O_APPEND (created 0600, its
directory 0700 when pgwarden creates it: events name other sessions). A short
write or an error (ENOSPC) truncates the file back to where the line started,
so a full disk never leaves a torn line. The first event of a run is written
before anything changes: if that fails the run stops (exit 2). A later failure
does not stop the run (the database journal is the truth); it is kept in
`broken` for the caller to report what committed.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from pathlib import Path

import orjson

from pgwarden.apply.events import Event
from pgwarden.errors import EnvironmentProblem
from pgwarden.private_dir import make_private_dir

__all__ = ["LocalJournal", "append_line"]

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def append_line(path: Path, line: bytes) -> None:
    """Append `line` whole or not at all (raises OSError; the file is left as it was)."""
    if not path.parent.exists():
        make_private_dir(path.parent)
    fd = os.open(path, _FLAGS, 0o600)
    try:
        st = os.fstat(fd)
        regular = stat.S_ISREG(st.st_mode)
        before = st.st_size
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if regular:
                os.fsync(fd)
        except OSError:
            if regular:
                with suppress(OSError):
                    os.ftruncate(fd, before)
            raise
    finally:
        os.close(fd)


class LocalJournal:
    """Appends every event as one JSON line to a local file (synced per event)."""

    def __init__(self, path: str | os.PathLike[str], run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.broken: str | None = None  # why the journal stopped writing, after the start
        self._started = False

    def __call__(self, event: Event) -> None:
        if self.broken is not None:
            return
        line = orjson.dumps({"run": self.run_id, **event.to_dict()}, default=str) + b"\n"
        try:
            append_line(self.path, line)
        except OSError as exc:
            why = exc.strerror or str(exc)
            if self._started:
                where = f"step {event.step}" if event.step is not None else "the run"
                self.broken = (
                    f"the local journal {self.path} could not be written from the "
                    f"{event.kind} event of {where} on: {why}"
                )
                return
            raise EnvironmentProblem(
                f"cannot write the local journal {self.path}: {why}",
                hint="free disk space or pass --journal-file elsewhere; `pgwarden status` "
                "reads the journal in the database",
            ) from None
        self._started = True
