"""Index builds outside transactions: find what an earlier build left, drop what is INVALID.

A cancelled or failed `CREATE INDEX CONCURRENTLY` (or `REINDEX CONCURRENTLY`)
leaves an INVALID index that still slows every write. pgwarden drops it with
`DROP INDEX CONCURRENTLY`, under the same lock guard. A build whose client died
may also have finished on the server (the backend builds on until it tries to
send the result), so before a build the step's index is looked for by its
definition as the server spells it, not only by name: an unnamed build's second
copy would get another generated name.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.analysis.nodes import option_on
from pgwarden.analysis.parse import parse
from pgwarden.apply.events import Blocker
from pgwarden.apply.guards import Failure, classify, set_timeouts
from pgwarden.plan import Step
from pgwarden.rules._sql import regclass

__all__ = [
    "Existing",
    "builds_index",
    "built_by_step",
    "definition",
    "drop_invalid",
    "existing_builds",
    "index_name",
    "invalid_indexes",
    "reindex_leftovers",
    "table_of",
]

_PROBE = "pgwarden_index_probe"  # the empty temporary copy `definition` builds on


def builds_index(step: Step) -> bool:
    """A concurrent build that can leave an INVALID index behind."""
    return (step.kind == "IndexStmt" and bool(step.body.get("concurrent"))) or (
        # not a plain REINDEX SCHEMA / DATABASE, which also refuses a transaction block
        step.kind == "ReindexStmt" and option_on(step.body.get("params"), "concurrently")
    )


def table_of(step: Step) -> str | None:
    rel = step.body.get("relation")
    return regclass(rel) if rel else None


# The relation `t` names and, partitioned, its partitions at every level (`tree`); for
# an index, the tables of those indexes (`tabs`).
_TREE = (
    "WITH named AS (SELECT to_regclass({t}) AS oid), "
    "tree AS (SELECT oid FROM named WHERE oid IS NOT NULL "
    "UNION SELECT p.relid FROM named, pg_partition_tree(named.oid) p), "
    "tabs AS (SELECT coalesce((SELECT indrelid FROM pg_index WHERE indexrelid = tree.oid), "
    "tree.oid) AS oid FROM tree) "
)


def invalid_indexes(
    conn: psycopg.Connection[tuple[object, ...]], table: str
) -> dict[int, tuple[str, str]]:
    """OID -> (schema, name) of the INVALID indexes on `table` (an index: on its table, as
    a REINDEX INDEX names it) and, when it is partitioned, on its partitions at every
    level (a REINDEX of a partitioned table or index rebuilds theirs), and on their TOAST
    tables (a cancelled REINDEX TABLE CONCURRENTLY's copy) when the role may name
    pg_toast objects (USAGE: superusers)."""
    rows = conn.execute(
        sql.SQL(
            _TREE + "SELECT i.indexrelid::bigint, n.nspname, c.relname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT i.indisvalid AND (i.indrelid IN (SELECT oid FROM tabs) "
            "OR (has_schema_privilege('pg_toast', 'USAGE') AND i.indrelid IN "
            "(SELECT reltoastrelid FROM pg_class WHERE oid IN (SELECT oid FROM tabs))))"
        ).format(t=sql.Literal(table))
    ).fetchall()
    return {int(str(r[0])): (str(r[1]), str(r[2])) for r in rows}


_REINDEX_LEFTOVERS = sql.SQL(
    """
    WITH named AS (SELECT to_regclass({rel}) AS oid),
    tree AS (SELECT oid FROM named WHERE oid IS NOT NULL
             UNION SELECT p.relid FROM named, pg_partition_tree(named.oid) p),
    base AS (SELECT coalesce((SELECT indrelid FROM pg_index WHERE indexrelid = tree.oid),
                             tree.oid) AS oid
               FROM tree WHERE {kind} IN ('TABLE', 'INDEX')
             UNION ALL
             SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'm')
                AND CASE {kind} WHEN 'SCHEMA' THEN n.nspname = {schema}
                    WHEN 'DATABASE' THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                         AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
                    ELSE false END),
    tabs AS (SELECT oid FROM base
             UNION ALL
             SELECT reltoastrelid FROM pg_class
              WHERE oid IN (SELECT oid FROM base) AND reltoastrelid <> 0
                AND has_schema_privilege('pg_toast', 'USAGE'))
    SELECT n.nspname, c.relname FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT i.indisvalid AND i.indrelid IN (SELECT oid FROM tabs)
       AND c.relname ~ '_cc(new|old)[0-9]*$'
       AND EXISTS (SELECT FROM pg_index v JOIN pg_class vc ON vc.oid = v.indexrelid
                    WHERE v.indrelid = i.indrelid AND v.indisvalid
                      AND ({kind} <> 'INDEX' OR v.indexrelid IN (SELECT oid FROM tree))
                      AND starts_with(vc.relname,
                                      regexp_replace(c.relname, '_cc(new|old)[0-9]*$', '')))
       AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p
                        WHERE p.relid IN (SELECT oid FROM tabs) AND p.pid <> ALL ({ours}))
     ORDER BY 1, 2
    """
)


def reindex_leftovers(
    conn: psycopg.Connection[tuple[object, ...]], step: Step, *, exclude_pids: Sequence[int]
) -> list[tuple[str, str]]:
    """(schema, name) of the INVALID `<index>_ccnew` / `_ccold` copies an earlier, cancelled
    run of this REINDEX INDEX / TABLE / SCHEMA / DATABASE ... CONCURRENTLY left (psql, or
    a killed apply): on the tables it rebuilds (a partitioned table's or index's: its
    partitions', every level), and on their TOAST tables when the role may name pg_toast
    objects.

    A copy is an INVALID index named after a valid index of the same table (REINDEX
    INDEX: the named one) plus `_ccnew` / `_ccold`; none while another session builds
    an index on those tables (its copy is in progress, not left). A retry would skip
    them (REINDEX TABLE and wider) or build a second copy beside them (REINDEX INDEX).
    """
    kind = str(step.body.get("kind", "")).removeprefix("REINDEX_OBJECT_")
    rel = table_of(step)
    if step.kind != "ReindexStmt" or kind not in _REINDEX_KINDS:
        return []
    if kind in ("TABLE", "INDEX") and rel is None:
        return []
    rows = conn.execute(
        _REINDEX_LEFTOVERS.format(
            rel=sql.Literal(rel),
            kind=sql.Literal(kind),
            schema=sql.Literal(step.body.get("name")),
            ours=sql.Literal(list(exclude_pids)),
        )
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


_REINDEX_KINDS = ("TABLE", "INDEX", "SCHEMA", "DATABASE")


def index_name(step: Step) -> str | None:
    """The index a CREATE INDEX step builds: its own name, or the one the server generates
    (the lock model derives it the way PostgreSQL does: table_columns_idx)."""
    name = step.body.get("idxname")
    if name:
        return str(name)
    created = [c for c in step.effects.creates if not c.endswith("_seq")]
    return created[0].rsplit(".", 1)[-1] if created else None


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


@dataclass(frozen=True, slots=True)
class Existing:
    """An index on the step's table that is (a copy of) what the step builds."""

    oid: int
    schema: str
    name: str
    valid: bool
    builder: Blocker | None  # another session still building it, if any


def definition(
    conn: psycopg.Connection[tuple[object, ...]],
    step: Step,
    *,
    lock_timeout_ms: int,
    attempts: int = 20,
) -> tuple[bool, str] | None:
    """What a CREATE INDEX step builds, as the server spells it: (unique, pg_get_indexdef from
    USING on), with neither the index's name nor its table's.

    The statement's own tail (USING, columns, INCLUDE, WITH, WHERE) is run against an
    empty temporary copy of the table's columns in a transaction that is rolled back, so
    expressions and predicates are normalised by the server itself. Lock timeouts (the
    copy reads the table's definition under ACCESS SHARE) are retried, then raised; None
    when it cannot be done otherwise (no TEMP privilege, an expression the copy cannot
    take): callers then match by name only.
    """
    table = table_of(step)
    tail = _statement_tail(step.sql)
    if step.kind != "IndexStmt" or table is None or tail is None:
        return None
    for attempt in range(1, attempts + 1):
        try:
            return _probe(conn, table, bool(step.body.get("unique")), tail, lock_timeout_ms)
        except psycopg.Error as exc:
            kind = classify(exc)
            if kind is Failure.CONNECTION or (kind is Failure.LOCK and attempt == attempts):
                raise
            if kind is not Failure.LOCK:
                return None
            time.sleep(min(2.0, 0.1 * 2**attempt))
    return None


def _probe(
    conn: psycopg.Connection[tuple[object, ...]],
    table: str,
    unique: bool,
    tail: str,
    lock_timeout_ms: int,
) -> tuple[bool, str] | None:
    with conn.transaction(force_rollback=True):
        set_timeouts(conn, lock_timeout_ms=lock_timeout_ms, statement_timeout_ms=10_000, local=True)
        row = conn.execute(
            sql.SQL(
                "SELECT n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass({})"
            ).format(sql.Literal(table))
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
                sql.Identifier(_PROBE), sql.Identifier(str(row[0]), str(row[1]))
            )
        )
        conn.execute(
            sql.SQL("CREATE {}INDEX {} ON {} {}").format(
                sql.SQL("UNIQUE ") if unique else sql.SQL(""),
                sql.Identifier(_PROBE + "_idx"),
                sql.Identifier(_PROBE),
                sql.SQL(tail),  # the step's own text after its table: what it builds
            )
        )
        got = conn.execute(
            sql.SQL("SELECT pg_get_indexdef(to_regclass({}))").format(
                sql.Literal(f"pg_temp.{_PROBE}_idx")
            )
        ).fetchone()
    return None if got is None or got[0] is None else _key(str(got[0]))


def existing_builds(
    conn: psycopg.Connection[tuple[object, ...]],
    step: Step,
    *,
    exclude_pids: Sequence[int],
    lock_timeout_ms: int,
) -> list[Existing]:
    """The indexes on the step's table that an earlier attempt of this CREATE INDEX left.

    A named build: the index of that name, unless it is valid with another definition.
    An unnamed build: every index with the step's definition, whatever its name (the
    server names a second copy table_col_idx1); when the definition cannot be known,
    only an INVALID index with the name the server would generate. `builder` tells
    whether another session is still building it (pg_stat_progress_create_index).
    """
    table = table_of(step)
    if step.kind != "IndexStmt" or table is None:
        return []
    wanted = definition(conn, step, lock_timeout_ms=lock_timeout_ms)
    named = step.body.get("idxname")
    name = index_name(step)
    rows = conn.execute(
        sql.SQL(
            "SELECT i.indexrelid::bigint, n.nspname, c.relname, i.indisvalid, "
            "pg_get_indexdef(i.indexrelid), a.pid, coalesce(a.application_name, ''), "
            "coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8, "
            "coalesce(a.query, '') "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_stat_progress_create_index p ON p.index_relid = i.indexrelid "
            "AND p.pid <> ALL ({ours}::int[]) "
            "LEFT JOIN pg_stat_activity a ON a.pid = p.pid "
            "WHERE i.indrelid = to_regclass({table})::oid ORDER BY c.relname"
        ).format(ours=sql.Literal(list(exclude_pids)), table=sql.Literal(table))
    ).fetchall()
    out = []
    for oid, schema, relname, valid, indexdef, pid, app, state, age, query in rows:
        same = wanted is not None and _key(str(indexdef)) == wanted
        if named:
            mine = relname == named and (not valid or wanted is None or same)
        else:
            mine = same if wanted is not None else relname == name and not valid
        if not mine:
            continue
        builder = None
        if pid is not None:
            builder = Blocker(
                pid=int(str(pid)),
                application=str(app),
                state=str(state),
                xact_age_s=None if age is None else float(str(age)),
                query=str(query),
                relation=f"{schema}.{relname}",
                mode="building",
            )
        out.append(Existing(int(str(oid)), str(schema), str(relname), bool(valid), builder))
    return out


# Of the given indexes, those whose catalog row was written after the first recorded
# attempt of the step began: the `step_started` event of that attempt is committed before
# its build starts, so a build it started has a younger xmin (a smaller age()).
_BUILT_BY_STEP = sql.SQL(
    "SELECT c.oid::bigint FROM pg_class c WHERE c.oid = ANY ({oids}::oid[]) "
    "AND age(c.xmin) < (SELECT max(age(e.xmin)) FROM pgwarden.events e "
    "JOIN pgwarden.steps s ON s.run_id = e.run_id AND s.idx = e.step "
    "WHERE e.kind = 'step_started' AND s.key = {key})"
)


def built_by_step(
    conn: psycopg.Connection[tuple[object, ...]], key: str, found: Sequence[Existing]
) -> list[Existing]:
    """Those of `found` that an earlier attempt of the step with history key `key` built
    (this run's or a killed, failed or cancelled run's, as the journal records them): an
    index of the same definition that was there before the step was first tried is
    someone else's, and adopting it would skip a statement the user wrote."""
    if not found:
        return []
    rows = conn.execute(
        _BUILT_BY_STEP.format(oids=sql.Literal([e.oid for e in found]), key=sql.Literal(key))
    ).fetchall()
    ours = {int(str(r[0])) for r in rows}
    return [e for e in found if e.oid in ours]


def _key(indexdef: str) -> tuple[bool, str]:
    """(unique, the definition from USING on) of a pg_get_indexdef text."""
    on = indexdef.find(" ON ")
    at = indexdef.find(" USING ", on)
    return indexdef.startswith("CREATE UNIQUE "), indexdef[at:] if at >= 0 else indexdef


def _statement_tail(text: str) -> str | None:
    """The CREATE INDEX text after its table's name: USING, columns, INCLUDE, WITH, WHERE."""
    stmts = parse(text)
    rel = stmts[0].body.get("relation") if len(stmts) == 1 else None
    start = rel.get("location") if isinstance(rel, dict) else None
    if not isinstance(start, int) or start < 0:
        return None
    src = stmts[0].text
    end = _name_end(src, start)
    tail = src[end:].strip().rstrip(";").strip()
    return tail or None


def _name_end(text: str, i: int) -> int:
    """Where the possibly qualified, possibly quoted name starting at `i` ends."""
    n = len(text)
    while True:
        if i < n and text[i] == '"':
            i += 1
            while i < n:
                if text[i] == '"' and text[i + 1 : i + 2] == '"':
                    i += 2
                elif text[i] == '"':
                    i += 1
                    break
                else:
                    i += 1
        else:
            while i < n and (text[i].isalnum() or text[i] in "_$"):
                i += 1
        j = i
        while j < n and text[j].isspace():
            j += 1
        if j >= n or text[j] != ".":
            return i
        i = j + 1
        while i < n and text[i].isspace():
            i += 1
