"""The protection a database's identity stamp records (`pgwarden.target.protected`).

Read here, below apply, rehearse and backup, because all three decide a
target's protection by it: the stamp travels with the database.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgwarden.pg.connect import connect
from pgwarden.pg.journal_access import check_journal_readable

__all__ = ["stamp_protection", "stamped_protection"]


def stamp_protection(conn: psycopg.Connection[tuple[object, ...]]) -> bool | None:
    """What the database's stamp records as its protection (None: no stamp, or a stamp
    from before protection was recorded); reads stamps of any pgwarden version.
    `DatabaseError` when this role may not read the pgwarden schema."""
    check_journal_readable(conn)
    row = conn.execute(sql.SQL("SELECT to_regclass('pgwarden.target')")).fetchone()
    if row is None or row[0] is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT (to_jsonb(t) ->> 'protected')::boolean FROM pgwarden.target t LIMIT 1")
    ).fetchone()
    return None if row is None or row[0] is None else bool(row[0])


def stamped_protection(dsn: str) -> bool | None:
    """`stamp_protection` of the database at `dsn`, for commands without a connection."""
    with connect(dsn, application_name="pgwarden-identity") as conn:
        return stamp_protection(conn)
