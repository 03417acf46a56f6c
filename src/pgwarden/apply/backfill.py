"""Backfill: a batched, throttled, resumable UPDATE in primary-key order.

Each batch runs in its own short transaction under the lock guard, with the
progress (last primary key done) recorded in `pgwarden.backfills` in the same
transaction, so an interrupted backfill resumes exactly where it stopped. The
batch size adapts toward a target batch time, and the health gate runs before
every batch.

One backfill per table at a time: a session advisory lock keyed on the table's
OID is held for the whole run, so a second run started meanwhile is refused
instead of applying the SET list twice. A job is the resolved table plus the
SET and WHERE texts; a finished job is refused unless `again` is given, since
pgwarden cannot tell whether a SET list is safe to apply twice.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pgwarden.analysis.parse import parse
from pgwarden.apply.events import BackfillBatch, Observer
from pgwarden.apply.guards import Failure, LockPolicy, backoff_ms, classify, set_timeouts
from pgwarden.apply.health import HealthPolicy, wait_until_healthy
from pgwarden.apply.journal import Journal
from pgwarden.apply.upgrade_guard import refuse_during_upgrade
from pgwarden.errors import ApplyFailed, InputError, Refused

__all__ = ["LOCK_CLASS", "BackfillResult", "BackfillSpec", "check_backfill", "run_backfill"]

_INT_TYPES = {"smallint", "integer", "bigint"}

LOCK_CLASS = 0x70776266  # "pwbf": first key of the (class, table OID) advisory lock


@dataclass(frozen=True, slots=True)
class BackfillSpec:
    """What to update and how fast."""

    table: str
    set_sql: str  # e.g. "status = 'open'"
    where_sql: str | None = None
    batch_size: int = 1_000
    min_batch_size: int = 100
    max_batch_size: int = 50_000
    target_batch_ms: int = 200
    lock: LockPolicy = field(
        default_factory=lambda: LockPolicy(lock_timeout_ms=500, statement_timeout_ms=30_000)
    )


@dataclass(frozen=True, slots=True)
class BackfillResult:
    key: str
    state: str  # done, cancelled
    rows: int  # rows updated in this invocation
    batches: int
    last_pk: int | None
    resumed_from: int | None
    seconds: float


def _validate(spec: BackfillSpec) -> None:
    where = f" WHERE {spec.where_sql}" if spec.where_sql else ""
    text = f"UPDATE backfill_target SET {spec.set_sql}{where}"
    stmts = parse(text, "<backfill>")
    body = stmts[0].tree.get("UpdateStmt") if len(stmts) == 1 else None
    smuggled = body is not None and (
        any(body.get(k) for k in ("fromClause", "returningClause", "withClause"))
        or bool(body.get("whereClause")) != bool(spec.where_sql)
    )
    if body is None or smuggled:
        raise InputError(
            "--set and --where must be one SET list and one condition, not statements",
            hint="e.g. --set \"status = 'open'\" --where 'status IS NULL'",
        )


def _target(conn: psycopg.Connection[tuple[object, ...]], table: str) -> tuple[str, str, str, int]:
    """(schema, name, primary key column, OID) of `table`."""
    row = conn.execute(
        sql.SQL(
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, NULL), c.oid::bigint "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1 "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
            "WHERE c.oid = to_regclass({})"
        ).format(sql.Literal(table))
    ).fetchone()
    if row is None:
        raise InputError(f"table {table!r} does not exist", hint="check --table")
    if row[2] is None or str(row[3]) not in _INT_TYPES:
        raise Refused(
            f"{table} has no single-column integer primary key to batch by",
            hint="backfill needs one; batch it by hand otherwise",
        )
    return str(row[0]), str(row[1]), str(row[2]), int(str(row[4]))


def _check_columns(
    conn: psycopg.Connection[tuple[object, ...]],
    rel: sql.Identifier,
    table: str,
    spec: BackfillSpec,
) -> None:
    """Refuse a SET list or condition that does not fit the table (an unknown column, a
    type mismatch): EXPLAIN plans the UPDATE, resolving every name, and runs nothing."""
    where = sql.SQL(" WHERE {}").format(sql.SQL(spec.where_sql)) if spec.where_sql else sql.SQL("")
    query = sql.SQL("EXPLAIN (COSTS OFF) UPDATE {} SET {}{}").format(
        rel, sql.SQL(spec.set_sql), where
    )
    try:
        with conn.transaction():
            conn.execute(query)
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        if state[:2] not in ("42", "22") or state == "42501":
            return  # not about the text (a lock wait, a privilege): the first batch says
        text = str(exc).strip().splitlines()[0]
        flags = "--set and --where" if spec.where_sql else "--set"
        raise InputError(
            f"{flags} do not fit {table}: {text}",
            hint=f"check the column names and types of {table}; nothing was changed",
        ) from None


def check_backfill(dsn: str, spec: BackfillSpec) -> None:
    """Check the spec without changing anything: one SET list and one condition, a table
    with a single-column integer primary key, and names and types that fit it."""
    from pgwarden.pg.connect import connect

    _validate(spec)
    with connect(dsn, application_name="pgwarden-backfill") as conn:
        set_timeouts(conn, lock_timeout_ms=2000, statement_timeout_ms=60_000, local=False)
        schema, name, _pk, _oid = _target(conn, spec.table)
        _check_columns(conn, sql.Identifier(schema, name), f"{schema}.{name}", spec)


def _lock_table(conn: psycopg.Connection[tuple[object, ...]], oid: int, table: str) -> None:
    """Hold the table's backfill lock for the session, or refuse naming who holds it."""
    key2 = oid - 2**32 if oid >= 2**31 else oid  # the OID as the int4 the function takes
    holder = None
    for _ in range(2):  # the holder may end between the try and the look-up
        row = conn.execute(
            sql.SQL("SELECT pg_try_advisory_lock({}, {})").format(
                sql.Literal(LOCK_CLASS), sql.Literal(key2)
            )
        ).fetchone()
        if row is not None and row[0]:
            return
        holder = conn.execute(
            sql.SQL(
                "SELECT l.pid, to_char(a.backend_start AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI:SS') FROM pg_locks l "
                "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid = {}::oid AND l.objid = {}::oid"
            ).format(sql.Literal(LOCK_CLASS), sql.Literal(oid))
        ).fetchone()
        if holder is not None:
            break
    who = "pid unknown" if holder is None else f"pid {holder[0]}, connected since {holder[1]} UTC"
    raise Refused(
        f"another backfill of {table} is running ({who})",
        hint="let it finish, or stop it with Ctrl-C in its terminal (the same command then "
        "resumes it); `SELECT * FROM pgwarden.backfills` shows its progress",
    )


def _job_key(table: str, spec: BackfillSpec) -> str:
    text = f"{table}\0{spec.set_sql}\0{spec.where_sql or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _job(
    conn: psycopg.Connection[tuple[object, ...]], table: str, spec: BackfillSpec, again: bool
) -> tuple[str, int | None]:
    """The job's key and the primary key to resume after; a finished job is refused."""
    match = sql.SQL(
        "table_name = {} AND set_sql = {} AND where_sql IS NOT DISTINCT FROM {}"
    ).format(sql.Literal(table), sql.Literal(spec.set_sql), sql.Literal(spec.where_sql))
    row = conn.execute(
        sql.SQL(
            "SELECT key, state, last_pk, rows_done, "
            "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
            "FROM pgwarden.backfills WHERE {} ORDER BY updated_at DESC LIMIT 1"
        ).format(match)
    ).fetchone()
    if row is None:
        key = _job_key(table, spec)
        conn.execute(
            sql.SQL(
                "INSERT INTO pgwarden.backfills (key, table_name, set_sql, where_sql, state) "
                "VALUES ({}, {}, {}, {}, 'running')"
            ).format(
                sql.Literal(key),
                sql.Literal(table),
                sql.Literal(spec.set_sql),
                sql.Literal(spec.where_sql),
            )
        )
        return key, None
    key, state, last_pk = str(row[0]), str(row[1]), row[2]
    if state == "done" and not again:
        raise Refused(
            f"this backfill of {table} already finished at {row[4]} UTC "
            f"({int(str(row[3])):,} rows); running it again would apply it a second time",
            hint="if applying it again is intended (status = 'open' is harmless twice, "
            "bal = bal + 1 is not), pass --again to start over from the first row; "
            "to catch rows added since, narrow it with --where",
        )
    if state == "done":
        conn.execute(
            sql.SQL(
                "UPDATE pgwarden.backfills SET state = 'running', last_pk = NULL, "
                "rows_done = 0, updated_at = now() WHERE key = {}"
            ).format(sql.Literal(key))
        )
        return key, None
    return key, None if last_pk is None else int(str(last_pk))


def run_backfill(
    dsn: str,
    spec: BackfillSpec,
    *,
    observer: Observer | None = None,
    cancel: threading.Event | None = None,
    health: HealthPolicy | None = None,
    again: bool = False,
) -> BackfillResult:
    """Run (or resume) the backfill until every row is visited or it is cancelled.

    Refused while another backfill of the same table runs, when this job already
    finished (unless `again`: then it starts over from the first row), and on OLD or
    NEW of an upgrade in progress (`upgrade_guard`).
    """
    from pgwarden.pg.connect import connect

    _validate(spec)
    stop = cancel or threading.Event()
    emit = observer or (lambda e: None)
    started = time.monotonic()
    with connect(dsn, application_name="pgwarden-backfill") as conn:
        set_timeouts(conn, lock_timeout_ms=2000, statement_timeout_ms=60_000, local=False)
        refuse_during_upgrade(conn)
        schema, name, pk, oid = _target(conn, spec.table)
        table = f"{schema}.{name}"
        rel = sql.Identifier(schema, name)
        _check_columns(conn, rel, table, spec)
        _lock_table(conn, oid, table)
        Journal.ensure_schema(conn)
        col = sql.Identifier(pk)
        key, resumed_from = _job(conn, table, spec, again)
        bounds = conn.execute(
            sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(c=col, t=rel)
        ).fetchone()
        assert bounds is not None
        lo = int(str(bounds[0])) - 1 if bounds[0] is not None else 0
        hi = int(str(bounds[1])) if bounds[1] is not None else 0
        last = resumed_from if resumed_from is not None else lo
        set_list = sql.SQL(spec.set_sql)  # parsed above: one SET list
        where = (
            sql.SQL(" AND ({})").format(sql.SQL(spec.where_sql)) if spec.where_sql else sql.SQL("")
        )

        def make(after: int, n: int) -> sql.Composed:
            return sql.SQL(
                "WITH batch AS (SELECT {c} FROM {t} WHERE {c} > {last} ORDER BY {c} LIMIT {n}), "
                "upd AS (UPDATE {t} SET {set} WHERE {c} IN (SELECT {c} FROM batch){where} "
                "RETURNING 1) SELECT (SELECT max({c}) FROM batch), (SELECT count(*) FROM upd)"
            ).format(
                c=col, t=rel, set=set_list, where=where, last=sql.Literal(after), n=sql.Literal(n)
            )

        size, rows, batches = spec.batch_size, 0, 0
        while True:
            if stop.is_set():
                return BackfillResult(
                    key,
                    "cancelled",
                    rows,
                    batches,
                    last,
                    resumed_from,
                    time.monotonic() - started,
                )
            if health is not None:
                wait_until_healthy(conn, health, cancel=stop, emit=emit, step=None)
            t0 = time.monotonic()
            top, n = _batch(conn, spec, key, make(last, size), last)
            elapsed_ms = (time.monotonic() - t0) * 1000
            if top is None:
                break
            last, rows, batches = top, rows + n, batches + 1
            done_frac = (last - lo) / (hi - lo) if hi > lo else 1.0
            spent = time.monotonic() - started
            eta = spent / done_frac * (1 - done_frac) if done_frac > 0 else None
            emit(
                BackfillBatch(
                    rows=n,
                    total_rows=rows,
                    last_pk=last,
                    max_pk=hi,
                    batch_size=size,
                    batch_ms=round(elapsed_ms, 1),
                    progress=round(done_frac, 4),
                    eta_s=None if eta is None else round(eta, 1),
                )
            )
            ratio = spec.target_batch_ms / max(elapsed_ms, 1.0)
            size = int(
                min(spec.max_batch_size, max(spec.min_batch_size, size * min(2.0, max(0.5, ratio))))
            )
        conn.execute(
            sql.SQL(
                "UPDATE pgwarden.backfills SET state = 'done', updated_at = now() WHERE key = {}"
            ).format(sql.Literal(key))
        )
    return BackfillResult(
        key, "done", rows, batches, last, resumed_from, time.monotonic() - started
    )


def _batch(
    conn: psycopg.Connection[tuple[object, ...]],
    spec: BackfillSpec,
    key: str,
    query: sql.Composed,
    last: int,
) -> tuple[int | None, int]:
    """One batch in its own transaction, retried on lock timeouts; (max pk, rows)."""
    attempt = 0
    start = time.monotonic()
    while True:
        attempt += 1
        try:
            with conn.transaction():
                set_timeouts(
                    conn,
                    lock_timeout_ms=spec.lock.lock_timeout_ms,
                    statement_timeout_ms=spec.lock.statement_timeout_ms,
                    local=True,
                )
                row = conn.execute(query).fetchone()
                assert row is not None
                if row[0] is None:
                    return None, 0
                top = int(str(row[0]))
                conn.execute(
                    sql.SQL(
                        "UPDATE pgwarden.backfills SET last_pk = {}, rows_done = rows_done + {}, "
                        "updated_at = now() WHERE key = {}"
                    ).format(sql.Literal(top), sql.Literal(int(str(row[1]))), sql.Literal(key))
                )
                return top, int(str(row[1]))
        except psycopg.Error as exc:
            spent_ms = (time.monotonic() - start) * 1000
            if classify(exc) is not Failure.LOCK or spent_ms > spec.lock.total_budget_ms:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ApplyFailed(
                    f"backfill batch after {spec.table} pk {last} failed: {text}",
                    hint="batches done so far are recorded; run the same backfill again to resume",
                ) from None
            time.sleep(backoff_ms(spec.lock, attempt) / 1000)
