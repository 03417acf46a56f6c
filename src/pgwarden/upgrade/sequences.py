"""Sequences are not replicated by logical replication: copy their values across."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

__all__ = ["SequenceValue", "copy_sequences", "read_sequences"]

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class SequenceValue:
    schema: str
    name: str
    last_value: int
    is_called: bool


def read_sequences(conn: Conn) -> list[SequenceValue]:
    """Every sequence of user schemas with its current value (not extension members)."""
    names = conn.execute(
        """
        SELECT n.nspname, c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2
        """
    ).fetchall()
    out: list[SequenceValue] = []
    for schema, name in names:
        row = conn.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(
                sql.Identifier(str(schema), str(name))
            )
        ).fetchone()
        assert row is not None
        out.append(SequenceValue(str(schema), str(name), int(str(row[0])), bool(row[1])))
    return out


def copy_sequences(source: Conn, target: Conn) -> int:
    """setval on `target` for each sequence of `source` that `target` has; the count set."""
    values = read_sequences(source)
    present = {(s.schema, s.name) for s in read_sequences(target)}
    done = 0
    for v in values:
        if (v.schema, v.name) not in present:
            continue
        target.execute(
            "SELECT setval(%s::regclass, %s, %s)",
            (sql.Identifier(v.schema, v.name).as_string(target), v.last_value, v.is_called),
        )
        done += 1
    return done
