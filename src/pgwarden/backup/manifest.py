"""The manifest of one backup and the record of its verification.

Both are JSON documents that carry a SHA-256 of their own canonical form
(sorted keys, no whitespace, the checksum field left out), so an edited or
truncated document is detected on read. This guards against accidents
(a bad edit, a partial copy), not against someone who recomputes the sum.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pgwarden.errors import InputError, UsageError

__all__ = [
    "FORMAT",
    "FileEntry",
    "Manifest",
    "TableCheck",
    "Verification",
    "format_duration",
    "format_time",
    "parse_aware",
    "utc_now",
]

FORMAT = "pgwarden-backup/1"
_CHECKSUM_KEY = "checksum_sha256"
EXAMPLE_TIME = "2024-02-21T04:55:00+00:00"


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, to the second."""
    return t.astimezone(UTC).isoformat(timespec="seconds")


def parse_aware(text: str, *, what: str = "time") -> datetime:
    """Parse an ISO 8601 time that carries an offset (or Z); refuse naive ones."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is not an ISO 8601 timestamp",
            hint=f"write it with an offset, e.g. {EXAMPLE_TIME} or 2024-02-21T04:55:00Z",
        ) from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise UsageError(
            f"{what} {text!r} has no UTC offset: it names a different instant in each time zone",
            hint=f"write it with an offset, e.g. {EXAMPLE_TIME} or 2024-02-21T04:55:00Z "
            "(a naive time is refused, it is how restores pick the wrong backup)",
        )
    return t.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """A short human duration that never rounds away a unit: 4.2 s, 1 min 30 s, 2 h 5 min,
    3 days 4 h."""
    s = abs(seconds)
    if s < 59.95:
        return f"{s:.1f} s"
    if s < 3599.5:
        minutes, secs = divmod(round(s), 60)
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    total_min = round(s / 60)
    if total_min < 48 * 60:
        hours, minutes = divmod(total_min, 60)
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, rest = divmod(round(s / 3600), 24)
    return f"{days} days" + (f" {rest} h" if rest else "")


def _canonical(data: dict[str, Any]) -> bytes:
    body = {k: v for k, v in data.items() if k != _CHECKSUM_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(data: dict[str, Any]) -> str:
    """JSON text of `data` with its checksum field set."""
    sealed = dict(data)
    sealed[_CHECKSUM_KEY] = hashlib.sha256(_canonical(data)).hexdigest()
    return json.dumps(sealed, sort_keys=True, indent=1) + "\n"


def unseal(text: str, *, where: str) -> dict[str, Any]:
    """Parse sealed JSON; raise InputError when it is unreadable or its checksum differs."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON ({exc}); the file is damaged") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a JSON object; the file is damaged")
    want = data.get(_CHECKSUM_KEY)
    have = hashlib.sha256(_canonical(data)).hexdigest()
    if want != have:
        raise InputError(
            f"{where}: checksum does not match its content (recorded {str(want)[:12]}, "
            f"computed {have[:12]}): the file was edited or damaged",
            hint="do not trust this backup; restore from another one",
        )
    return data


@dataclass(frozen=True, slots=True)
class TableCheck:
    """Row count and content checksum of one table, taken in the dump's snapshot."""

    schema: str
    name: str
    rows: int
    checksum: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the dump directory; `table` names the table whose data it holds."""

    path: str
    size: int
    sha256: str
    table: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything known about a backup when it was taken."""

    id: str
    database: str
    database_oid: int
    system_identifier: int
    server_version: str
    server_version_num: int
    pg_dump_version: str
    encoding: str
    snapshot_at: datetime
    started_at: datetime
    ended_at: datetime
    lsn: str
    jobs: int
    size_bytes: int
    database_size_bytes: int
    tables: tuple[TableCheck, ...]
    files: tuple[FileEntry, ...]
    schema: tuple[str, ...]
    roles: tuple[str, ...]
    checksum_sha256: str = field(default="", compare=False)

    @property
    def server_major(self) -> int:
        return self.server_version_num // 10000

    def to_json(self) -> str:
        """Sealed JSON text of this manifest."""
        data = asdict(self)
        data.pop(_CHECKSUM_KEY)
        data["format"] = FORMAT
        for key in ("snapshot_at", "started_at", "ended_at"):
            data[key] = format_time(getattr(self, key))
        return seal(data)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Manifest:
        """Parse and check a manifest; raise InputError when damaged."""
        data = unseal(text, where=where)
        if data.get("format") != FORMAT:
            raise InputError(
                f"{where}: unknown manifest format {data.get('format')!r}",
                hint=f"this pgwarden reads {FORMAT}",
            )
        try:
            return cls(
                id=str(data["id"]),
                database=str(data["database"]),
                database_oid=int(data["database_oid"]),
                system_identifier=int(data["system_identifier"]),
                server_version=str(data["server_version"]),
                server_version_num=int(data["server_version_num"]),
                pg_dump_version=str(data["pg_dump_version"]),
                encoding=str(data["encoding"]),
                snapshot_at=parse_aware(data["snapshot_at"]),
                started_at=parse_aware(data["started_at"]),
                ended_at=parse_aware(data["ended_at"]),
                lsn=str(data["lsn"]),
                jobs=int(data["jobs"]),
                size_bytes=int(data["size_bytes"]),
                database_size_bytes=int(data["database_size_bytes"]),
                tables=tuple(TableCheck(**t) for t in data["tables"]),
                files=tuple(FileEntry(**f) for f in data["files"]),
                schema=tuple(str(s) for s in data["schema"]),
                roles=tuple(str(r) for r in data["roles"]),
                checksum_sha256=str(data[_CHECKSUM_KEY]),
            )
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise InputError(f"{where}: malformed manifest ({exc})") from None


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of restoring a backup into a throwaway cluster and checking it."""

    backup_id: str
    manifest_sha256: str
    ok: bool
    verified_at: datetime
    restore_seconds: float
    total_seconds: float
    restored_on: str
    tables_checked: int
    mismatches: tuple[str, ...] = ()
    first_mismatch: str | None = None
    message: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["verified_at"] = format_time(self.verified_at)
        data["format"] = FORMAT
        return seal(data)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Verification:
        data = unseal(text, where=where)
        try:
            return cls(
                backup_id=str(data["backup_id"]),
                manifest_sha256=str(data["manifest_sha256"]),
                ok=bool(data["ok"]),
                verified_at=parse_aware(data["verified_at"]),
                restore_seconds=float(data["restore_seconds"]),
                total_seconds=float(data["total_seconds"]),
                restored_on=str(data["restored_on"]),
                tables_checked=int(data["tables_checked"]),
                mismatches=tuple(str(m) for m in data["mismatches"]),
                first_mismatch=data["first_mismatch"],
                message=str(data["message"]),
            )
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise InputError(f"{where}: malformed verification record ({exc})") from None
