"""The local rollout journal: which wave each target is in and what happened to it.

One JSON file per fleet (and label selector) in the fleet's `journal_dir`,
replaced atomically on every change (written to a temporary file, fsynced,
renamed; mode 0600, directory 0700). It names targets, never their DSNs. It is
the runner's memory (waves, gate baselines, where it halted); each target's own
`pgwarden` history is the truth about what is applied, and `fleet status` reads
that. A lock file held with `flock` for the whole rollout keeps two runners on
this machine from driving the same rollout; the per-target advisory lock of
apply keeps any two runners anywhere from changing the same target at once.
A cancel request is a file of its own beside the journal (`fleet cancel`
writes it; the runner polls it), so the two never write the same file.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from pgwarden.errors import EnvironmentProblem, Refused, UsageError
from pgwarden.private_dir import make_private_dir

__all__ = ["RolloutJournal", "journal_path", "runner_lock"]


def journal_path(journal_dir: str, fleet: str, selector: Mapping[str, str]) -> Path:
    """`<journal_dir>/<fleet>[--label=value...].json`."""
    slug = "".join(f"--{k}={v}" for k, v in sorted(selector.items()))
    name = re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{fleet}{slug}")
    return Path(journal_dir) / f"{name}.json"


class runner_lock:
    """Exclusive `flock` on `<journal>.lock` for the life of a rollout, or `Refused`."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_suffix(".lock")
        self._fd: int | None = None

    def __enter__(self) -> runner_lock:
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Refused(
                f"another pgwarden fleet runner on this machine is driving this rollout "
                f"(lock {self.path})",
                hint="`pgwarden fleet status` shows it; `pgwarden fleet cancel` stops it",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None

    @staticmethod
    def held(path: Path) -> bool:
        """Whether a live runner holds the lock of the journal at `path`."""
        lock = path.with_suffix(".lock")
        if not lock.exists():
            return False
        fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


class RolloutJournal:
    """The journal's data (`data`), saved whole on every `update`."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self._lock = threading.Lock()

    @staticmethod
    def load(path: Path) -> RolloutJournal:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(
                f"no rollout journal at {path}: this fleet was never rolled out from here",
                hint="run `pgwarden fleet apply` first (or pass the same --label and --config)",
            ) from None
        except OSError as exc:
            raise EnvironmentProblem(f"cannot read the rollout journal {path}: {exc}") from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise EnvironmentProblem(
                f"the rollout journal {path} is not valid JSON (edited or truncated)",
                hint="each target's own history still says what is applied: "
                "`pgwarden fleet status`; move the file away to start a new rollout",
            ) from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise EnvironmentProblem(f"the rollout journal {path} is not one this pgwarden wrote")
        return RolloutJournal(path, data)

    def save(self) -> None:
        make_private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        body = orjson.dumps(self.data, option=orjson.OPT_INDENT_2)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise EnvironmentProblem(
                f"cannot write the rollout journal {self.path}: {exc.strerror or exc}",
                hint="free disk space or set journal_dir elsewhere; each target's history "
                "still records what was applied",
            ) from None

    def update(self, fn: Any) -> None:
        """Apply `fn(data)` and save, one writer at a time."""
        with self._lock:
            fn(self.data)
            self.save()

    def set_target(self, name: str, **fields: Any) -> None:
        def change(d: dict[str, Any]) -> None:
            d["targets"][name].update(fields, at=time.time())

        self.update(change)

    # -- cancel requests ----------------------------------------------------------------

    @property
    def cancel_file(self) -> Path:
        return self.path.with_suffix(".cancel")

    def cancel_requested(self) -> bool:
        return self.cancel_file.exists()

    def clear_cancel(self) -> None:
        self.cancel_file.unlink(missing_ok=True)
