"""The session TimeZone the rehearsal's sessions run with: production's.

`ALTER COLUMN ... TYPE timestamptz` from `timestamp` (and back) is done in place
only when the session's TimeZone is UTC (PostgreSQL 12+), else the table is
rewritten. The throwaway cluster starts in UTC, so the copy is given the
TimeZone a migration session on the source starts with (`ALTER DATABASE ... SET
TimeZone` on the copy): every session the rehearsal opens on it afterwards (the
steps', the probes', the workload's, a caller's own) starts with it.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgwarden.analysis.context import Snapshot
from pgwarden.pg.connect import connect

__all__ = ["is_utc", "pick_timezone", "set_database_timezone", "source_timezone"]

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


def pick_timezone(
    given: str | None, schema_from: str | None, snapshot: Snapshot | None
) -> tuple[str | None, str]:
    """The TimeZone to rehearse with and where it comes from: the caller's (Django's),
    else the source database's session default, else the snapshot's catalog; (None, "")
    when nothing says (the target's own default stays)."""
    if given is not None:
        return given, "the session TimeZone the migrations run with"
    if schema_from is not None:
        return source_timezone(schema_from), "the source database's session default"
    if snapshot is not None and snapshot.catalog is not None:
        return snapshot.catalog.timezone, "the stats snapshot's session TimeZone"
    return None, ""


def set_database_timezone(conn: psycopg.Connection[tuple[object, ...]], tz: str) -> None:
    """Make `tz` the default TimeZone of sessions started on `conn`'s database from now on."""
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET TimeZone = {}").format(
            sql.Identifier(str(row[0])), sql.Literal(tz)
        )
    )
