"""The rehearsal record: proof that this exact plan was rehearsed, for `apply` to require.

One JSON file per plan, `.pgwarden/rehearsals/<fingerprint>.json`, rewritten by
each rehearsal of that plan (format `pgwarden-rehearsal/1`):

    {"format": "pgwarden-rehearsal/1", "fingerprint": "<sha256 of the plan>",
     "status": "completed" | "failed" | "interrupted", "rehearsed_at": "<ISO 8601>",
     "server_version": "18.1", "target": "...", "sources": ["..."],
     "findings": {"error": 1, "warning": 0, "note": 0},
     "steps": [{"index", "sql", "status", "duration_s", "strongest",
                "writes_blocked_s", "reads_blocked_s"}],
     "result": {...the full --format json result...}}

`was_rehearsed(plan)` returns the record only when the rehearsal completed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pgwarden.errors import InputError
from pgwarden.plan import Plan
from pgwarden.private_dir import make_private_dir
from pgwarden.rehearse.model import RehearsalResult

__all__ = [
    "FORMAT",
    "RehearsalRecord",
    "default_dir",
    "read_record",
    "was_rehearsed",
    "write_record",
]

FORMAT = "pgwarden-rehearsal/1"


@dataclass(frozen=True, slots=True)
class RehearsalRecord:
    """What `apply` needs to know about the last rehearsal of a plan."""

    fingerprint: str
    status: str
    rehearsed_at: datetime
    server_version: str
    target: str
    errors: int
    warnings: int
    path: Path

    @property
    def completed(self) -> bool:
        return self.status == "completed"


def default_dir() -> Path:
    """`$PGWARDEN_REHEARSALS`, else `.pgwarden/rehearsals` in the working directory."""
    return Path(os.environ.get("PGWARDEN_REHEARSALS") or Path(".pgwarden") / "rehearsals")


def _summary(result: RehearsalResult) -> dict[str, Any]:
    full = result.to_dict()
    counts = {
        s: sum(1 for f in result.findings if f.severity.value == s)
        for s in ("error", "warning", "note")
    }
    steps = [
        {
            "index": s.index,
            "sql": s.sql,
            "status": s.status,
            "duration_s": round(s.duration_s, 6),
            "strongest": s.strongest(),
            "writes_blocked_s": max((b.writes_blocked_s for b in s.blocking), default=0.0),
            "reads_blocked_s": max((b.reads_blocked_s for b in s.blocking), default=0.0),
        }
        for s in result.steps
    ]
    return {
        "format": FORMAT,
        "fingerprint": result.fingerprint,
        "status": result.status,
        "rehearsed_at": datetime.now(UTC).isoformat(),
        "server_version": result.server_version,
        "target": result.target,
        "sources": list(result.extra.get("sources", [])),
        "findings": counts,
        "steps": steps,
        "result": full,
    }


def write_record(result: RehearsalResult, directory: Path | None = None) -> Path:
    """Write (atomically) the record of `result`; return its path."""
    folder = directory or default_dir()
    try:
        make_private_dir(folder)
        target = folder / f"{result.fingerprint}.json"
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(_summary(result), option=orjson.OPT_INDENT_2))
        tmp.replace(target)
    except OSError as exc:
        raise InputError(
            f"{folder}: cannot write the rehearsal record: {exc.strerror}",
            hint="make the folder writable or set PGWARDEN_REHEARSALS",
            path=str(folder),
        ) from None
    return target


def read_record(path: Path) -> RehearsalRecord | None:
    """The record in `path`, or None when it is missing or not a rehearsal record."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    try:
        counts = data.get("findings", {})
        return RehearsalRecord(
            fingerprint=str(data["fingerprint"]),
            status=str(data["status"]),
            rehearsed_at=datetime.fromisoformat(str(data["rehearsed_at"])),
            server_version=str(data.get("server_version", "")),
            target=str(data.get("target", "")),
            errors=int(counts.get("error", 0)),
            warnings=int(counts.get("warning", 0)),
            path=path,
        )
    except (KeyError, TypeError, ValueError):
        return None


def was_rehearsed(plan: Plan, directory: Path | None = None) -> RehearsalRecord | None:
    """The record of a completed rehearsal of exactly this plan, else None."""
    fp = plan.fingerprint()
    rec = read_record((directory or default_dir()) / f"{fp}.json")
    if rec is None or rec.fingerprint != fp or not rec.completed:
        return None
    return rec
