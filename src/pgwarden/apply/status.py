"""`pgwarden status`: the stamp and the latest runs as the database journal tells them.

A run recorded as running is checked against the server (`liveness`): `running`,
`orphaned` (its backend is there, its client is gone) or `interrupted` (no
backend). A run a later run resumed shows as `resumed`. The latest break-glass
records (`pgwarden.break_glass`: who, when, why, which run) come with them.
It only reads: a role granted USAGE on schema pgwarden and SELECT on its tables
may run it; one without gets `journal_unreadable` (exit 2) from `read_stamp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from pgwarden.apply.identity import (
    Stamp,
    read_stamp,
)
from pgwarden.apply.journal import (
    schema_exists,
)
from pgwarden.apply.liveness import HEARTBEAT_S, life_of
from pgwarden.pg.connect import connect


@dataclass(frozen=True, slots=True)
class StepStatus:
    index: int
    state: str
    attempts: int
    point_of_no_return: bool
    sql: str
    error: str | None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """One run as the database journal tells it."""

    run_id: str
    kind: str
    state: str  # running, orphaned, interrupted, resumed, done, failed, cancelled
    started_at: datetime
    finished_at: datetime | None
    who: str
    environment: str
    message: str | None
    steps: tuple[StepStatus, ...]
    progress: dict[str, Any] | None = None  # pg_stat_progress_* of the running statement
    waiting_on: tuple[int, ...] = ()  # pids our backend waits for
    events: tuple[dict[str, Any], ...] = ()
    backend: str | None = None  # what the backend of a running or orphaned run is doing
    resumed_by: str | None = None  # the later run that continued this one


@dataclass(frozen=True, slots=True)
class BreakGlassRecord:
    """A break-glass run (`--break-glass "reason"`) as `pgwarden.break_glass` records it."""

    at: datetime
    run_id: str | None  # None: a gate check that started no run of its own
    command: str
    environment: str
    os_user: str
    host: str
    session_user: str
    current_user: str
    reason: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    stamp: Stamp | None
    runs: tuple[RunStatus, ...]
    break_glass: tuple[BreakGlassRecord, ...] = ()  # the latest first


_PROGRESS = (
    ("create_index", "pg_stat_progress_create_index"),
    ("cluster", "pg_stat_progress_cluster"),
    ("copy", "pg_stat_progress_copy"),
)


def status(
    database_url: str, *, limit: int = 5, client_gone_s: float = HEARTBEAT_S
) -> StatusReport:
    """The stamp and the latest runs, with live progress for a running one (a run whose
    watchdog has been silent for `client_gone_s` is orphaned, see `liveness`)."""
    with connect(database_url, application_name="pgwarden-status") as conn:
        stamp = read_stamp(conn)
        if not schema_exists(conn):
            return StatusReport(stamp, ())
        rows = conn.execute(
            sql.SQL(
                "SELECT r.id, r.kind, r.state, r.started_at, r.finished_at, "
                "r.os_user || '@' || r.host, r.environment, r.message, r.backend_pid, "
                "r.plan, (SELECT l.id FROM pgwarden.runs l WHERE l.resumes = r.id "
                "ORDER BY l.started_at DESC LIMIT 1) "
                "FROM pgwarden.runs r ORDER BY r.started_at DESC LIMIT {}"
            ).format(sql.Literal(limit))
        ).fetchall()
        runs = []
        for rid, kind, state, started, finished, who, env, msg, pid, plan, later in rows:
            steps = tuple(
                StepStatus(
                    int(str(i)),
                    str(st),
                    int(str(a)),
                    bool(p),
                    str(plan[int(str(i))]["sql"]) if isinstance(plan, list) else "",
                    None if e is None else str(e),
                )
                for i, st, a, p, e in conn.execute(
                    sql.SQL(
                        "SELECT idx, state, attempts, point_of_no_return, error "
                        "FROM pgwarden.steps WHERE run_id = {} ORDER BY idx"
                    ).format(sql.Literal(rid))
                )
            )
            progress: dict[str, Any] | None = None
            waiting: tuple[int, ...] = ()
            shown = str(state)
            backend = None
            if state == "running":
                assert isinstance(started, datetime)
                life, found = life_of(
                    conn, str(rid), int(str(pid)), started, client_gone_s=client_gone_s
                )
                shown = life
                backend = found.describe() if found is not None else None
            if shown == "interrupted" and later is not None:
                shown = "resumed"
            if shown in ("running", "orphaned"):
                progress = _progress(conn, int(str(pid)))
                w = conn.execute(
                    sql.SQL("SELECT pg_blocking_pids({})").format(sql.Literal(int(str(pid))))
                ).fetchone()
                waiting = tuple(int(x) for x in (w[0] if w and w[0] else []))  # type: ignore[attr-defined]
            events = tuple(
                # the event's own kind wins; a step_failed's failure class (its data's
                # "kind") is kept as "failure"
                {
                    **{("failure" if key == "kind" else key): v for key, v in _data(d).items()},
                    "kind": str(k),
                    "step": s,
                    "at": str(at),
                }
                for k, s, at, d in conn.execute(
                    sql.SQL(
                        "SELECT kind, step, at, data FROM pgwarden.events WHERE run_id = {} "
                        "AND kind IN ('retry', 'watchdog_cancel', 'cancelled', 'step_failed', "
                        "'cleanup', 'health_pause') ORDER BY id DESC LIMIT 10"
                    ).format(sql.Literal(rid))
                )
            )
            assert isinstance(started, datetime)
            runs.append(
                RunStatus(
                    str(rid),
                    str(kind),
                    shown,
                    started,
                    finished if isinstance(finished, datetime) else None,
                    str(who),
                    str(env),
                    None if msg is None else str(msg),
                    steps,
                    progress,
                    waiting,
                    events,
                    backend,
                    None if later is None else str(later),
                )
            )
        return StatusReport(stamp, tuple(runs), _break_glass(conn, limit))


def _break_glass(
    conn: psycopg.Connection[tuple[object, ...]], limit: int
) -> tuple[BreakGlassRecord, ...]:
    """The latest `limit` break-glass records (none in a journal older than the table)."""
    row = conn.execute("SELECT to_regclass('pgwarden.break_glass') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return ()
    rows = conn.execute(
        sql.SQL(
            "SELECT at, run_id, command, environment, os_user, host, session_user_name, "
            "current_user_name, reason FROM pgwarden.break_glass "
            "ORDER BY at DESC, id DESC LIMIT {}"
        ).format(sql.Literal(limit))
    ).fetchall()
    out = []
    for at, run_id, *text in rows:
        assert isinstance(at, datetime)
        command, env, os_user, host, session_user, current_user, reason = map(str, text)
        out.append(
            BreakGlassRecord(
                at,
                None if run_id is None else str(run_id),
                command,
                env,
                os_user,
                host,
                session_user,
                current_user,
                reason,
            )
        )
    return tuple(out)


def _progress(conn: psycopg.Connection[tuple[object, ...]], pid: int) -> dict[str, Any] | None:
    for name, view in _PROGRESS:
        cur = conn.execute(
            sql.SQL("SELECT * FROM {} WHERE pid = {}").format(
                sql.Identifier("pg_catalog", view), sql.Literal(pid)
            )
        )
        row = cur.fetchone()
        if row is not None and cur.description is not None:
            data = {d.name: v for d, v in zip(cur.description, row, strict=True)}
            return {"command": name, **{k: str(v) for k, v in data.items()}}
    return None


def _data(d: object) -> dict[str, Any]:
    return {str(k): v for k, v in d.items()} if isinstance(d, dict) else {}
