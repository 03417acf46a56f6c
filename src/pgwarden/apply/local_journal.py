"""The local journal: every event of a run as one JSON line in a file beside the operator."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from pgwarden.apply.events import Event
from pgwarden.errors import EnvironmentProblem

__all__ = ["LocalJournal"]


class LocalJournal:
    """Appends every event as one JSON line to a local file (flushed per event)."""

    def __init__(self, path: str | os.PathLike[str], run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id

    def __call__(self, event: Event) -> None:
        line = orjson.dumps({"run": self.run_id, **event.to_dict()}, default=str) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as f:
                f.write(line)
                f.flush()
                if self.path.is_file():
                    os.fsync(f.fileno())
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot write the local journal {self.path}: {exc.strerror or exc}",
                hint="free disk space or pass --journal-file elsewhere; `pgwarden status` "
                "reads the journal in the database",
            ) from None
