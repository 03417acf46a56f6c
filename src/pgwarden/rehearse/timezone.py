"""The session TimeZone the rehearsal's sessions run with: production's.

`ALTER COLUMN ... TYPE timestamptz` from `timestamp` (and back) is done in place
only when the session's TimeZone is UTC (PostgreSQL 12+), else the table is
rewritten. The throwaway cluster starts in UTC, so the copy is given the
TimeZone a migration session on the source starts with (`ALTER DATABASE ... SET
TimeZone` on the copy): every session the rehearsal opens on it afterwards (the
steps', the probes', the workload's, a caller's own) starts with it. When nothing
says which it is (no --timezone, no source database, a snapshot that does not
record it), the target's own default is used and said to be an assumption, with
how to give production's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.analysis.context import Snapshot
from pgwarden.errors import ConfigError, UsageError
from pgwarden.pg.connect import connect
from pgwarden.plan import Plan
from pgwarden.settings import Settings
from pgwarden.sources.labels import statement_label

__all__ = [
    "HOW_TO_GIVE",
    "SessionTimeZone",
    "assumed_note",
    "database_timezone",
    "is_utc",
    "pick_timezone",
    "set_database_timezone",
    "snapshot_records_timezone",
    "source_timezone",
    "timezone_setting",
    "zone_sensitive_steps",
]

HOW_TO_GIVE = (
    "give production's with --timezone NAME (or rehearse.timezone in the configuration; "
    "`SHOW TimeZone` in a migration session there prints it), --schema-from DSN, or a stats "
    "snapshot from `pgwarden stats dump`, which records it"
)


@dataclass(frozen=True, slots=True)
class SessionTimeZone:
    """The TimeZone the steps run with, where it comes from, and, when nothing said what
    production's is, why (`assumed`: the target's own default is used)."""

    name: str | None  # None: the target's default, read once the target is up
    origin: str
    assumed: str = ""  # why it is an assumption; "" when production's is known


# Names of UTC as the lock model knows them (analysis/locks_altertable.py).
_UTC = frozenset({"UTC", "ETC/UTC", "UCT", "ZULU", "GMT", "ETC/GMT"})


def is_utc(tz: str) -> bool:
    """Whether `tz` names UTC (a timestamp <-> timestamptz change is then in place)."""
    return tz.upper() in _UTC


def source_timezone(dsn: str) -> str:
    """`SHOW TimeZone` on a fresh session of `dsn`: the server's setting with the role's
    and the database's overrides (and the URL's `options`), as a migration session gets it."""
    with connect(dsn) as conn:
        row = conn.execute("SHOW TimeZone").fetchone()
    return str(row[0]) if row else "UTC"


def snapshot_records_timezone(path: str | os.PathLike[str]) -> bool:
    """Whether the snapshot file records its catalog's session TimeZone (files written
    before `stats dump` recorded it load as UTC without saying so)."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False  # load_snapshot has said what is wrong with it
    catalog = data.get("catalog") if isinstance(data, dict) else None
    return isinstance(catalog, dict) and isinstance(catalog.get("timezone"), str)


def pick_timezone(
    given: str | None,
    schema_from: str | None,
    snapshot: Snapshot | None,
    *,
    given_origin: str = "the session TimeZone the migrations run with",
    stats_file: str | os.PathLike[str] | None = None,
) -> SessionTimeZone:
    """The TimeZone to rehearse with and where it comes from: the caller's (Django's, or
    --timezone), else the source database's session default, else the snapshot's catalog;
    else the target's own default, said to be assumed."""
    if given is not None:
        return SessionTimeZone(given, given_origin)
    if schema_from is not None:
        return SessionTimeZone(
            source_timezone(schema_from), "the source database's session default"
        )
    if snapshot is not None and snapshot.catalog is not None:
        if stats_file is None or snapshot_records_timezone(stats_file):
            return SessionTimeZone(
                snapshot.catalog.timezone, "the stats snapshot's session TimeZone"
            )
        name = Path(stats_file).name
        return SessionTimeZone(
            None,
            "the rehearsal database's default",
            f"{name} does not record the session TimeZone (written by an older pgwarden; "
            "regenerate it with `pgwarden stats dump`)",
        )
    return SessionTimeZone(
        None, "the rehearsal database's default", "nothing said what production's is"
    )


def timezone_setting(settings: Settings) -> str | None:
    """`timezone` of `[tool.pgwarden.rehearse]`, checked (None when not set)."""
    value = settings.raw.get("rehearse", {}).get("timezone")
    if value is not None and not (isinstance(value, str) and value.strip()):
        where = settings.source or "configuration"
        raise ConfigError(
            f"{where}: rehearse.timezone must be a time zone name, e.g. 'Europe/Paris'"
        )
    return value.strip() if isinstance(value, str) else None


_ZONED = frozenset({"timestamp", "timestamptz"})


def _base(spelled: str) -> str:
    text = spelled.split("(")[0].strip().lower()
    if text.startswith("timestamp"):
        return "timestamptz" if text.endswith(("with time zone", "tz")) else "timestamp"
    return text


def zone_sensitive_steps(plan: Plan) -> list[tuple[int, str, bool]]:
    """(index, label, rewrites) of the steps changing a column between timestamp and
    timestamptz, whose rewrite depends on the session TimeZone (as the model saw it)."""
    out = []
    for step in plan.steps:
        for change in step.effects.type_changes:
            if {_base(change.old), _base(change.new)} == _ZONED:
                out.append((step.index, statement_label(step.sql, 70), change.rewrites))
                break
    return out


def assumed_note(tz: str, why: str, steps: Sequence[tuple[int, str, bool]]) -> str:
    """The note saying the TimeZone was assumed, what that changes, and how to give it
    (in full when a step's rewrite depends on it)."""
    head = f"the steps ran with TimeZone {tz!r}, the rehearsal database's default, since {why}"
    if not steps:
        return (
            f"{head} (no step here changes a column between timestamp and timestamptz, "
            "whose rewrite depends on it); give production's with --timezone NAME"
        )
    listed = "; ".join(
        f"step {i} ({label}) {'with a rewrite' if rewrites else 'in place'}"
        for i, label, rewrites in steps
    )
    return (
        f"{head}: a timestamp <-> timestamptz change is done in place only in UTC and "
        f"rewrites the table under ACCESS EXCLUSIVE elsewhere (here: {listed}; production's "
        f"TimeZone decides); {HOW_TO_GIVE}"
    )


def set_database_timezone(
    conn: psycopg.Connection[tuple[object, ...]], tz: str, origin: str = ""
) -> None:
    """Make `tz` the default TimeZone of sessions started on `conn`'s database from now on;
    a name the server does not know is a `UsageError` naming `origin`."""
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    try:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET TimeZone = {}").format(
                sql.Identifier(str(row[0])), sql.Literal(tz)
            )
        )
    except pge.InvalidParameterValue:
        raise UsageError(
            f"TimeZone {tz!r} ({origin or 'given'}): the rehearsal server does not know it",
            hint="give a name from the server's pg_timezone_names (e.g. 'Europe/Paris' or "
            "'UTC'), as `SHOW TimeZone` prints it in production",
        ) from None


def database_timezone(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """`SHOW TimeZone` on `conn`: the TimeZone its sessions start with."""
    row = conn.execute("SHOW TimeZone").fetchone()
    return str(row[0]) if row else "UTC"
