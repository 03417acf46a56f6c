"""Backfill: a batched, throttled, resumable UPDATE in primary-key order.

Each batch runs in its own short transaction under the lock guard, with the
progress (last primary key done) recorded in `pgwarden.backfills` in the same
transaction, so an interrupted backfill resumes exactly where it stopped. The
batch size adapts toward a target batch time, and the health gate runs before
every batch.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pgwarden.analysis.parse import parse
from pgwarden.apply.events import Event, Observer
from pgwarden.apply.guards import Failure, LockPolicy, backoff_ms, classify, set_timeouts
from pgwarden.apply.health import HealthPolicy, wait_until_healthy
from pgwarden.apply.journal import Journal
from pgwarden.errors import ApplyFailed, InputError, Refused

__all__ = ["BackfillResult", "BackfillSpec", "run_backfill"]

_INT_TYPES = {"smallint", "integer", "bigint"}


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

    @property
    def key(self) -> str:
        text = f"{self.table}\0{self.set_sql}\0{self.where_sql or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    if len(stmts) != 1 or stmts[0].kind != "UpdateStmt":
        raise InputError(
            "--set and --where must be one SET list and one condition, not statements",
            hint="e.g. --set \"status = 'open'\" --where 'status IS NULL'",
        )


def _target(conn: psycopg.Connection[tuple[object, ...]], table: str) -> tuple[str, str, str]:
    row = conn.execute(
        sql.SQL(
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, NULL) "
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
    return str(row[0]), str(row[1]), str(row[2])


def run_backfill(
    dsn: str,
    spec: BackfillSpec,
    *,
    observer: Observer | None = None,
    cancel: threading.Event | None = None,
    health: HealthPolicy | None = None,
) -> BackfillResult:
    """Run (or resume) the backfill until every row is visited or it is cancelled."""
    from pgwarden.pg.connect import connect

    _validate(spec)
    stop = cancel or threading.Event()
    emit = observer or (lambda e: None)
    started = time.monotonic()
    with connect(dsn, application_name="pgwarden-backfill") as conn:
        set_timeouts(conn, lock_timeout_ms=2000, statement_timeout_ms=60_000, local=False)
        schema, name, pk = _target(conn, spec.table)
        Journal.ensure_schema(conn)
        rel = sql.Identifier(schema, name)
        col = sql.Identifier(pk)
        conn.execute(
            sql.SQL(
                "INSERT INTO pgwarden.backfills (key, table_name, set_sql, where_sql, state) "
                "VALUES ({}, {}, {}, {}, 'running') ON CONFLICT (key) DO NOTHING"
            ).format(
                sql.Literal(spec.key),
                sql.Literal(f"{schema}.{name}"),
                sql.Literal(spec.set_sql),
                sql.Literal(spec.where_sql),
            )
        )
        row = conn.execute(
            sql.SQL("SELECT last_pk FROM pgwarden.backfills WHERE key = {}").format(
                sql.Literal(spec.key)
            )
        ).fetchone()
        resumed_from = None if row is None or row[0] is None else int(str(row[0]))
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
                    spec.key,
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
            top, n = _batch(conn, spec, make(last, size), last)
            elapsed_ms = (time.monotonic() - t0) * 1000
            if top is None:
                break
            last, rows, batches = top, rows + n, batches + 1
            done_frac = (last - lo) / (hi - lo) if hi > lo else 1.0
            spent = time.monotonic() - started
            eta = spent / done_frac * (1 - done_frac) if done_frac > 0 else None
            emit(
                Event(
                    "backfill_batch",
                    None,
                    {
                        "rows": n,
                        "total_rows": rows,
                        "last_pk": last,
                        "max_pk": hi,
                        "batch_size": size,
                        "batch_ms": round(elapsed_ms, 1),
                        "progress": round(done_frac, 4),
                        "eta_s": None if eta is None else round(eta, 1),
                    },
                )
            )
            ratio = spec.target_batch_ms / max(elapsed_ms, 1.0)
            size = int(
                min(spec.max_batch_size, max(spec.min_batch_size, size * min(2.0, max(0.5, ratio))))
            )
        conn.execute(
            sql.SQL(
                "UPDATE pgwarden.backfills SET state = 'done', updated_at = now() WHERE key = {}"
            ).format(sql.Literal(spec.key))
        )
    return BackfillResult(
        spec.key, "done", rows, batches, last, resumed_from, time.monotonic() - started
    )


def _batch(
    conn: psycopg.Connection[tuple[object, ...]],
    spec: BackfillSpec,
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
                    ).format(sql.Literal(top), sql.Literal(int(str(row[1]))), sql.Literal(spec.key))
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
