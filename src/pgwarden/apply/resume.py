"""`pgwarden resume`: continue an unfinished run from the plan stored in its journal."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from pgwarden.apply.journal import plan_from_records, schema_exists
from pgwarden.apply.policy import ApplyResult
from pgwarden.apply.run import apply_plan
from pgwarden.errors import Refused, UsageError
from pgwarden.pg.connect import connect
from pgwarden.settings import Settings

__all__ = ["resume_run"]


def resume_run(
    *,
    database_url: str,
    env: str | None,
    run_id: str | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> ApplyResult:
    """Continue the latest unfinished run (or `run_id`) from its stored plan."""
    with connect(database_url, application_name="pgwarden-status") as conn:
        if not schema_exists(conn):
            raise UsageError("nothing to resume: no pgwarden run was ever recorded here")
        cond = (
            sql.SQL("id = {}").format(sql.Literal(run_id))
            if run_id
            else sql.SQL("kind <> 'backfill' AND state <> 'done'")
        )
        row = conn.execute(
            sql.SQL(
                "SELECT id, plan, accept_data_loss, state, EXISTS (SELECT 1 "
                "FROM pg_stat_activity a WHERE a.pid = backend_pid "
                "AND a.application_name = 'pgwarden-apply') "
                "FROM pgwarden.runs WHERE {} ORDER BY started_at DESC LIMIT 1"
            ).format(cond)
        ).fetchone()
        server = conn.info.server_version // 10000
    if row is None:
        raise UsageError("nothing to resume: every recorded run is done")
    rid, records, accepted, state, alive = row
    if state == "running" and alive:
        raise Refused(f"run {rid} is still running", hint="`pgwarden cancel` it first")
    assert isinstance(records, list)
    plan = plan_from_records(records, server)
    kwargs.setdefault("accept_data_loss", accepted)
    return apply_plan(
        plan,
        database_url=database_url,
        env=env,
        settings=settings,
        kind="resume",
        resumes=str(rid),
        **kwargs,
    )
