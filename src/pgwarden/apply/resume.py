"""`pgwarden resume`: continue an unfinished run from the plan stored in its journal.

A run recorded as running whose client is gone (orphaned) does not block a
resume for ever: its idle or idle-in-transaction backend (which still holds the
apply lock) is ended; one still running a statement is named with the exact
commands to wait for it or stop it. When this process itself lost the run's
connection (the automatic reconnect), the old backend is ended at once.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

import psycopg
from psycopg import sql

from pgwarden.apply.events import Observer
from pgwarden.apply.journal import plan_from_records, schema_exists
from pgwarden.apply.liveness import is_this_process, life_of, stop_backend
from pgwarden.apply.policy import ApplyResult, GuardPolicy, RunOptions
from pgwarden.apply.run import apply_plan, early_role_check
from pgwarden.apply.upgrade_guard import refuse_during_upgrade
from pgwarden.errors import Refused, UsageError
from pgwarden.pg.connect import connect
from pgwarden.settings import Settings
from pgwarden.sources.alembic_resume import resume_runners

__all__ = ["resume_run"]


def _refuse_superseded(conn: psycopg.Connection[tuple[object, ...]], rid: str, state: str) -> None:
    """`UsageError` when a run that finished started after the unfinished run `rid`: the
    user has applied since (the failing statement fixed in its file, or other files), and
    resuming `rid` would run its stored plan, old statements included, behind their back."""
    row = conn.execute(
        sql.SQL(
            "SELECT l.id FROM pgwarden.runs l, pgwarden.runs r WHERE r.id = {} "
            "AND l.kind <> 'backfill' AND l.state = 'done' AND l.started_at > r.started_at "
            "ORDER BY l.started_at DESC LIMIT 1"
        ).format(sql.Literal(rid))
    ).fetchone()
    if row is None:
        return
    raise UsageError(
        f"nothing to resume: the latest run, {row[0]}, is done; run {rid} ({state}) "
        "started before it and was not continued, and runs since may have replaced its "
        "statements",
        hint=f"`pgwarden status` shows what run {rid} left undone; "
        f"`pgwarden resume --run {rid}` continues it if that is still wanted",
    )


def _no_such_run(run_id: str, why: str) -> UsageError:
    return UsageError(
        f"no run {run_id} in this database: {why}",
        hint="`pgwarden status` lists the latest runs with their ids (run ID [kind] state); "
        "`pgwarden resume` without --run continues the latest unfinished one",
    )


def _already_done(run_id: str, finished: object, by: str | None = None) -> UsageError:
    """`resume --run ID` of a done run, or of one a later resume (`by`) finished: nothing to
    continue, and no run is started (a resume run of it would only record its steps as
    skipped and mark it continued)."""
    when = f" (finished {finished:%Y-%m-%d %H:%M:%S})" if isinstance(finished, datetime) else ""
    what = f"was continued by run {by}, which is done{when}" if by else f"is already done{when}"
    return UsageError(
        f"nothing to resume: run {run_id} {what}; nothing was done",
        hint="`pgwarden status` shows its steps; changed or new files are applied with "
        "`pgwarden apply`, an unfinished run is continued with `pgwarden resume --run ID`",
    )


def _finished_by(
    conn: psycopg.Connection[tuple[object, ...]], rid: str
) -> tuple[str, object] | None:
    """The done run (id, finished_at) that continued run `rid`, through a chain of
    resumes (a resume of it that failed, resumed in turn), or None."""
    row = conn.execute(
        sql.SQL(
            "WITH RECURSIVE later AS (SELECT id, state, finished_at FROM pgwarden.runs "
            "WHERE resumes = {} UNION ALL SELECT r.id, r.state, r.finished_at "
            "FROM pgwarden.runs r JOIN later l ON r.resumes = l.id) "
            "SELECT id, finished_at FROM later WHERE state = 'done' ORDER BY finished_at LIMIT 1"
        ).format(sql.Literal(rid))
    ).fetchone()
    return None if row is None else (str(row[0]), row[1])


def resume_run(
    *,
    database_url: str,
    run_id: str | None = None,
    policy: GuardPolicy | None = None,
    options: RunOptions | None = None,
    settings: Settings | None = None,
    observer: Observer | None = None,
    cancel: threading.Event | None = None,
) -> ApplyResult:
    """Continue the latest unfinished run (or `run_id`) from its stored plan.

    `policy` and `options` are those of `apply_plan`; the run's own
    `--accept-data-loss` reason holds unless `policy` gives one.
    """
    with connect(database_url, application_name="pgwarden-status") as conn:
        if not (options or RunOptions()).dry_run:
            # before the journal is read or a backend ended: an upgrade in progress, a wrong role
            refuse_during_upgrade(conn)
            early_role_check(conn, settings or Settings(), policy or GuardPolicy())
        if not schema_exists(conn):
            if run_id:
                raise _no_such_run(run_id, "no pgwarden run was ever recorded here")
            raise UsageError("nothing to resume: no pgwarden run was ever recorded here")
        cond = (
            sql.SQL("id = {}").format(sql.Literal(run_id))
            if run_id
            # the latest unfinished run that no later run continued
            else sql.SQL(
                "kind <> 'backfill' AND state <> 'done' AND NOT EXISTS "
                "(SELECT 1 FROM pgwarden.runs l WHERE l.resumes = r.id)"
            )
        )
        row = conn.execute(
            sql.SQL(
                "SELECT id, plan, accept_data_loss, state, backend_pid, started_at, host, "
                "client_pid, finished_at FROM pgwarden.runs r WHERE {} "
                "ORDER BY started_at DESC LIMIT 1"
            ).format(cond)
        ).fetchone()
        server = conn.info.server_version // 10000
        if row is None:
            if run_id:
                raise _no_such_run(run_id, "its journal (pgwarden.runs) holds no such id")
            raise UsageError("nothing to resume: every recorded run is done")
        rid, records, accepted, state, pid, started, host, client_pid, finished = row
        if state == "done":  # only with --run: without it, done runs are not looked at
            raise _already_done(str(rid), finished)
        if run_id is not None and (later := _finished_by(conn, str(rid))) is not None:
            raise _already_done(str(rid), later[1], by=later[0])
        if run_id is None:
            _refuse_superseded(conn, str(rid), str(state))
        if state == "running":
            assert isinstance(started, datetime)
            ours = is_this_process(host, client_pid)
            life, backend = life_of(
                conn,
                str(rid),
                int(str(pid)),
                started,
                client_gone=ours,
                client_gone_s=(settings or Settings()).watchdog_client_gone_s,
            )
            if life == "running":
                raise Refused(
                    f"run {rid} is still running" + (f" ({backend.describe()})" if backend else ""),
                    hint="wait for it, or `pgwarden cancel` it first",
                )
            if backend is not None and backend.state == "active" and not ours:
                raise Refused(
                    f"run {rid}'s client is gone, but its {backend.describe()}",
                    hint="wait for it to finish (`pgwarden status` shows its progress), or stop "
                    f"it with `pgwarden cancel --run {rid}`; then `pgwarden resume`",
                )
            if backend is not None and not stop_backend(conn, backend.pid, terminate=True):
                raise Refused(
                    f"run {rid}'s orphaned backend pid {backend.pid} did not end",
                    hint=f"SELECT pg_terminate_backend({backend.pid}); then `pgwarden resume`",
                )
    assert isinstance(records, list)
    plan = plan_from_records(records, server)
    guard = policy or GuardPolicy()
    if guard.accept_data_loss is None and accepted is not None:
        guard = replace(guard, accept_data_loss=str(accepted))
    opts = replace(options or RunOptions(), kind="resume", resumes=str(rid))
    # Alembic revisions that only run online: their runners again (the plan has placeholders)
    online = resume_runners((step.sql for step in plan.steps), database_url)
    if online:
        opts = replace(opts, runners={**online, **opts.runners})
    return apply_plan(
        plan,
        database_url=database_url,
        policy=guard,
        options=opts,
        settings=settings,
        observer=observer,
        cancel=cancel,
    )
