"""`pgwarden cancel`, and stopping a run's backend when its client cannot (Ctrl-C, lost link).

A live run (its client answers) is asked to stop through `cancel_requested`;
its watchdog cancels the step and cleans up. A run whose client is gone but
whose backend is still busy (orphaned) has nobody to do that: its backend is
ended here and what the step left is checked in the catalog and reported.
Every message names the run and says what state the database is in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from pgwarden.apply.journal import schema_exists
from pgwarden.apply.liveness import (
    HEARTBEAT_S,
    Backend,
    Conn,
    Life,
    is_this_process,
    life_of,
    stop_backend,
    unit_report,
)
from pgwarden.errors import PgwardenError, UsageError
from pgwarden.pg.connect import connect

__all__ = ["CancelResult", "cancel_run", "end_lost_run", "stop_run_backend"]


@dataclass(frozen=True, slots=True)
class CancelResult:
    run_id: str | None
    state: str  # cancelled, signalled, ended, not-running
    message: str


@dataclass(frozen=True, slots=True)
class _Run:
    run_id: str
    pid: int
    started_at: datetime
    host: str
    client_pid: int
    resumed_by: str | None = None  # the later run that continued this one, if any


def _running(conn: Conn, run_id: str | None, *, any_state: bool = False) -> list[_Run]:
    cond: sql.Composable = sql.SQL("true") if any_state else sql.SQL("state = 'running'")
    if run_id is not None:
        cond = sql.SQL("{} AND id = {}").format(cond, sql.Literal(run_id))
    rows = conn.execute(
        sql.SQL(
            "SELECT id, backend_pid, started_at, host, client_pid, (SELECT l.id FROM "
            "pgwarden.runs l WHERE l.resumes = r.id ORDER BY l.started_at LIMIT 1) "
            "FROM pgwarden.runs r WHERE {} ORDER BY started_at DESC"
        ).format(cond)
    ).fetchall()
    out = []
    for rid, pid, started, host, cpid, later in rows:
        assert isinstance(started, datetime)
        out.append(
            _Run(
                str(rid),
                int(str(pid)),
                started,
                str(host),
                int(str(cpid)),
                None if later is None else str(later),
            )
        )
    return out


def _mark(conn: Conn, run_id: str, state: str, message: str) -> None:
    """Record how an orphaned run ended (its client cannot)."""
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "UPDATE pgwarden.steps SET state = {}, finished_at = now() "
                "WHERE run_id = {} AND state = 'running'"
            ).format(sql.Literal(state), sql.Literal(run_id))
        )
        conn.execute(
            sql.SQL(
                "UPDATE pgwarden.runs SET state = {}, finished_at = now(), message = {} "
                "WHERE id = {} AND state = 'running'"
            ).format(sql.Literal(state), sql.Literal(message), sql.Literal(run_id))
        )


def _end_orphan(conn: Conn, run: _Run, backend: Backend) -> CancelResult:
    what = (
        "cancelled its statement and ended the session"
        if backend.state == "active"
        else "rolled back its open transaction and ended the session"
    )
    before = backend.describe()
    if not stop_backend(conn, backend.pid, terminate=True):
        return CancelResult(
            run.run_id,
            "signalled",
            f"run {run.run_id}: its client is gone and {before}; sent pg_terminate_backend "
            f"to pid {backend.pid}, which has not ended yet: `pgwarden status` shows it",
        )
    left = unit_report(conn, run.run_id)
    message = f"run {run.run_id}: its client was gone and {before}; pgwarden {what}" + (
        "; " + "; ".join(left) if left else ""
    )
    _mark(conn, run.run_id, "cancelled", message)
    return CancelResult(run.run_id, "ended", message)


def cancel_run(
    database_url: str,
    *,
    run_id: str | None = None,
    wait_s: float = 10.0,
    client_gone_s: float = HEARTBEAT_S,
) -> CancelResult:
    """Stop the live run (or `run_id`): ask its client, or end an orphaned run's backend
    (one whose watchdog has been silent for `client_gone_s`). `UsageError` when `run_id`
    names no run of this database."""
    with connect(database_url, application_name="pgwarden-cancel") as conn:
        if not schema_exists(conn):
            if run_id is not None:
                raise _no_such_run(conn, run_id, "no pgwarden run was ever recorded here")
            return CancelResult(
                None,
                "not-running",
                "nothing to cancel: no pgwarden run was ever recorded in database "
                f"{conn.info.dbname}",
            )
        runs = _running(conn, run_id)
        if run_id is not None and not runs:
            row = conn.execute(
                sql.SQL("SELECT state, finished_at FROM pgwarden.runs WHERE id = {}").format(
                    sql.Literal(run_id)
                )
            ).fetchone()
            if row is None:
                raise _no_such_run(conn, run_id, "its journal (pgwarden.runs) holds no such id")
            state, finished = row
            when = ""
            if isinstance(finished, datetime):
                when = f" (finished {finished:%Y-%m-%d %H:%M:%S})"
            return CancelResult(
                run_id, "not-running", f"nothing to cancel: run {run_id} is {state}{when}"
            )
        lives = [
            (r, *life_of(conn, r.run_id, r.pid, r.started_at, client_gone_s=client_gone_s))
            for r in runs
        ]
        if run_id is None:
            live = [x for x in lives if x[1] == "running"]
            if not live:
                return CancelResult(None, "not-running", _nothing_live(lives))
            run, life, backend = live[0]
        else:
            run, life, backend = lives[0]
        if life == "interrupted":
            then = (
                f"run {run.resumed_by} continued it"
                if run.resumed_by
                else "`pgwarden resume` continues it"
            )
            return CancelResult(
                run.run_id,
                "not-running",
                f"run {run.run_id} has no backend left (interrupted): nothing to cancel; {then}",
            )
        assert backend is not None
        if life == "orphaned":
            if not backend.busy:
                return CancelResult(
                    run.run_id,
                    "not-running",
                    f"run {run.run_id}: nothing to cancel: its client is gone and "
                    f"{backend.describe()}; `pgwarden resume` continues the run (it ends "
                    "that idle session, which still holds the apply lock)",
                )
            return _end_orphan(conn, run, backend)
        return _ask(conn, run, wait_s)


def _no_such_run(conn: Conn, run_id: str, why: str) -> UsageError:
    """`cancel --run ID` of an id this database never recorded: a usage error (exit 2)."""
    return UsageError(
        f"no run {run_id} in database {conn.info.dbname}: {why}",
        hint="`pgwarden status` lists the latest runs with their ids (run ID [kind] state); "
        "`pgwarden cancel` without --run cancels the running one",
    )


def _nothing_live(lives: list[tuple[_Run, Life, Backend | None]]) -> str:
    parts = ["nothing to cancel: no apply is running"]
    for run, life, backend in lives:
        if life == "orphaned" and backend is not None:
            parts.append(
                f"run {run.run_id} is orphaned ({backend.describe()}): "
                f"`pgwarden cancel --run {run.run_id}` stops it"
            )
        elif life == "interrupted" and run.resumed_by is None:  # else: continued already
            parts.append(f"run {run.run_id} was interrupted: `pgwarden resume` continues it")
    return "; ".join(parts)


def _ask(conn: Conn, run: _Run, wait_s: float) -> CancelResult:
    """Ask a live run to cancel; if it does not react, cancel its statement ourselves."""
    conn.execute(
        sql.SQL("UPDATE pgwarden.runs SET cancel_requested = true WHERE id = {}").format(
            sql.Literal(run.run_id)
        )
    )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        st = conn.execute(
            sql.SQL(
                "SELECT r.state, r.message, EXISTS (SELECT 1 FROM pg_stat_activity "
                "WHERE pid = {}) FROM pgwarden.runs r WHERE id = {}"
            ).format(sql.Literal(run.pid), sql.Literal(run.run_id))
        ).fetchone()
        if st is None or st[0] != "running" or not st[2]:
            state = "cancelled" if st is not None and st[0] != "running" else "gone"
            said = f": {st[1]}" if st is not None and st[1] else ""
            return CancelResult(
                run.run_id, state, f"run {run.run_id}: {st[0] if st else 'unknown'}{said}"
            )
        time.sleep(0.1)
    conn.execute(sql.SQL("SELECT pg_cancel_backend({})").format(sql.Literal(run.pid)))
    return CancelResult(
        run.run_id,
        "signalled",
        f"run {run.run_id} did not react within {wait_s:.0f} s; sent pg_cancel_backend to "
        f"its backend pid {run.pid}: `pgwarden status` shows what it did",
    )


def stop_run_backend(
    database_url: str, run_id: str, *, terminate: bool, connect_timeout_s: int = 5
) -> str:
    """For Ctrl-C when the run's own connections are stuck: on a new connection, cancel the
    step's statement (or end the backend) and say what the database was left in."""
    try:
        with connect(
            database_url, application_name="pgwarden-cancel", connect_timeout_s=connect_timeout_s
        ) as conn:
            conn.execute(sql.SQL("SET statement_timeout = '10s'"))
            runs = _running(conn, run_id)
            if not runs:
                return f"run {run_id} is no longer running"
            run = runs[0]
            _life, backend = life_of(conn, run_id, run.pid, run.started_at, client_gone=True)
            if backend is None:
                left = unit_report(conn, run_id)
                return f"run {run_id}'s backend has ended" + (
                    "; " + "; ".join(left) if left else ""
                )
            if not terminate:
                if backend.state != "active" or not _runs_a_step(conn, run_id, backend):
                    return f"nothing to cancel yet: {backend.describe()}"
                stop_backend(conn, backend.pid, terminate=False)
                return f"sent pg_cancel_backend to backend pid {backend.pid}"
            before = backend.describe()
            if not stop_backend(conn, backend.pid, terminate=True):
                return f"sent pg_terminate_backend to pid {backend.pid}; it has not ended yet"
            left = unit_report(conn, run_id)
            message = f"ended the run's backend (before: {before})" + (
                "; " + "; ".join(left) if left else ""
            )
            _mark(conn, run_id, "cancelled", "interrupted (Ctrl-C twice): " + message)
            return message
    except (PgwardenError, psycopg.Error) as exc:
        text = exc.message if isinstance(exc, PgwardenError) else str(exc).strip()
        return (
            f"could not reach the server to check: {text}; the run's backend may still be "
            f"running its step: `pgwarden status` shows it, `pgwarden cancel --run {run_id}` "
            "stops it"
        )


def _runs_a_step(conn: Conn, run_id: str, backend: Backend) -> bool:
    """The backend's statement is one of the plan's (not a cleanup of a failed build)."""
    row = conn.execute(
        sql.SQL("SELECT plan FROM pgwarden.runs WHERE id = {}").format(sql.Literal(run_id))
    ).fetchone()
    plan = row[0] if row else None
    if not isinstance(plan, list) or not backend.query:
        return False
    return any(str(r.get("sql", "")).startswith(backend.query) for r in plan)


def end_lost_run(database_url: str, run_id: str, *, connect_timeout_s: int = 5) -> str:
    """After this process lost a run's connection: on a new connection, end the run's backend
    if the server still runs it (nothing will read its results) and say what the step left."""
    try:
        with connect(
            database_url, application_name="pgwarden-cancel", connect_timeout_s=connect_timeout_s
        ) as conn:
            conn.execute(sql.SQL("SET statement_timeout = '10s'"))
            runs = _running(conn, run_id, any_state=True)
            if not runs:
                return ""
            run = runs[0]
            _life, backend = life_of(
                conn,
                run_id,
                run.pid,
                run.started_at,
                client_gone=is_this_process(run.host, run.client_pid),
            )
            said = ""
            if backend is not None:
                said = f"the server was still running it ({backend.describe()}); "
                if not stop_backend(conn, backend.pid, terminate=True):
                    return said + f"pg_terminate_backend({backend.pid}) sent, not ended yet"
                said += f"pgwarden ended backend pid {backend.pid}; "
            left = unit_report(conn, run_id)
            return said + ("; ".join(left) if left else "nothing of the step is applied")
    except (PgwardenError, psycopg.Error) as exc:
        text = exc.message if isinstance(exc, PgwardenError) else str(exc).strip()
        return (
            f"the server could not be reached to check what the step left ({text}): its "
            "backend may still be running the step; `pgwarden status` shows it once the "
            f"server is reachable, `pgwarden cancel --run {run_id}` stops it"
        )
