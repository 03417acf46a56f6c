"""Index builds outside transactions: find and drop what a failed build leaves INVALID.

A cancelled or failed `CREATE INDEX CONCURRENTLY` (or `REINDEX CONCURRENTLY`)
leaves an INVALID index that still slows every write. pgwarden drops it with
`DROP INDEX CONCURRENTLY`, under the same lock guard.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from pgwarden.apply.guards import Failure, classify, set_timeouts
from pgwarden.plan import Step
from pgwarden.rules._sql import regclass

__all__ = [
    "builds_index",
    "drop_invalid",
    "index_name",
    "index_state",
    "invalid_indexes",
    "table_of",
]


def builds_index(step: Step) -> bool:
    """A concurrent build that can leave an INVALID index behind."""
    return (step.kind == "IndexStmt" and bool(step.body.get("concurrent"))) or (
        step.kind == "ReindexStmt" and not step.effects.transactional
    )


def table_of(step: Step) -> str | None:
    rel = step.body.get("relation")
    return regclass(rel) if rel else None


def invalid_indexes(
    conn: psycopg.Connection[tuple[object, ...]], table: str
) -> dict[int, tuple[str, str]]:
    """OID -> (schema, name) of the INVALID indexes on `table`."""
    rows = conn.execute(
        sql.SQL(
            "SELECT i.indexrelid::bigint, n.nspname, c.relname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indrelid = to_regclass({})::oid AND NOT i.indisvalid"
        ).format(sql.Literal(table))
    ).fetchall()
    return {int(str(r[0])): (str(r[1]), str(r[2])) for r in rows}


def index_name(step: Step) -> str | None:
    """The index a CREATE INDEX step builds: its own name, or the one the server generates
    (the lock model derives it the way PostgreSQL does: table_columns_idx)."""
    name = step.body.get("idxname")
    if name:
        return str(name)
    created = [c for c in step.effects.creates if not c.endswith("_seq")]
    return created[0].rsplit(".", 1)[-1] if created else None


def index_state(conn: psycopg.Connection[tuple[object, ...]], step: Step) -> str | None:
    """For a CREATE INDEX CONCURRENTLY: 'valid', 'invalid', or None when absent.

    An unnamed build is looked up by the name the server generates; only its INVALID
    leftover is reported (a valid index of that name may be someone else's).
    """
    name = index_name(step)
    table = table_of(step)
    if step.kind != "IndexStmt" or not name or table is None:
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass({})::oid AND c.relname = {}"
        ).format(sql.Literal(table), sql.Literal(str(name)))
    ).fetchone()
    if row is None:
        return None
    if row[0] and not step.body.get("idxname"):
        return None
    return "valid" if row[0] else "invalid"


def drop_invalid(
    conn: psycopg.Connection[tuple[object, ...]],
    names: list[tuple[str, str]],
    *,
    lock_timeout_ms: int,
    attempts: int = 20,
) -> list[tuple[str, str]]:
    """DROP INDEX CONCURRENTLY each (schema, name), retrying lock timeouts; returns what is left."""
    left = []
    for name in names:
        for attempt in range(1, attempts + 1):
            try:
                set_timeouts(
                    conn,
                    lock_timeout_ms=lock_timeout_ms,
                    statement_timeout_ms=60_000,
                    local=False,
                )
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(*name))
                )
                break
            except psycopg.Error as exc:
                if classify(exc) is not Failure.LOCK or attempt == attempts:
                    left.append(name)
                    break
                time.sleep(min(2.0, 0.1 * 2**attempt))
    return left
