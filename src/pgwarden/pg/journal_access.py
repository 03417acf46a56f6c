"""Whether this session's role may read pgwarden's own schema (stamp, journal, history).

The schema belongs to the role that created it, the migration role after the
documented flow. Another role without `USAGE` on it (or `SELECT` on its tables)
would meet a bare "permission denied" at the first query; `check_journal_readable`
says instead which role, which schema and what to do, before anything reads it.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgwarden.errors import DatabaseError

__all__ = ["check_journal_readable", "journal_unreadable"]

SCHEMA = "pgwarden"

_ACCESS = sql.SQL(
    "SELECT current_user::text, pg_get_userbyid(n.nspowner)::text, "
    "has_schema_privilege(n.oid, 'USAGE'), "
    "ARRAY(SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = n.oid "
    "AND c.relkind IN ('r', 'p') AND NOT has_table_privilege(c.oid, 'SELECT') "
    "ORDER BY c.relname) "
    "FROM pg_namespace n WHERE n.nspname = {}"
).format(sql.Literal(SCHEMA))


def check_journal_readable(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Raise `journal_unreadable` when schema pgwarden exists and this role may not read
    it or one of its tables; nothing when it is readable or not there."""
    row = conn.execute(_ACCESS).fetchone()
    if row is None:
        return
    role, owner, usage, closed = str(row[0]), str(row[1]), bool(row[2]), row[3]
    tables = [str(t) for t in closed] if isinstance(closed, list) else []
    if usage and not tables:
        return
    raise journal_unreadable(role, owner, None if not usage else tables)


def journal_unreadable(role: str, owner: str, tables: list[str] | None) -> DatabaseError:
    """The error for `role` meeting schema pgwarden owned by `owner`: no `USAGE` on the
    schema (`tables` None) or no `SELECT` on `tables`."""
    what = (
        "no USAGE on the schema"
        if tables is None
        else "no SELECT on " + ", ".join(f"{SCHEMA}.{t}" for t in tables)
    )
    return DatabaseError(
        f"role {role} cannot read schema {SCHEMA} (owned by {owner}): {what}, so "
        "pgwarden's stamp and journal cannot be read",
        hint=f"connect as the migration role; for a read-only `pgwarden status`, as {owner}: "
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role}; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {role}",
        sqlstate="42501",
    )
