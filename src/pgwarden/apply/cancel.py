"""`pgwarden cancel`: ask a running apply to stop."""

from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg import sql

from pgwarden.apply.journal import (
    schema_exists,
)
from pgwarden.pg.connect import connect


@dataclass(frozen=True, slots=True)
class CancelResult:
    run_id: str | None
    state: str  # cancelled, not-running, signalled
    message: str


def cancel_run(
    database_url: str, *, run_id: str | None = None, wait_s: float = 10.0
) -> CancelResult:
    """Ask the running apply to cancel; fall back to pg_cancel_backend if it does not react."""
    with connect(database_url, application_name="pgwarden-cancel") as conn:
        if not schema_exists(conn):
            return CancelResult(None, "not-running", "no pgwarden run was ever recorded here")
        where: sql.Composable = sql.SQL("state = 'running'")
        if run_id is not None:
            where = sql.SQL("state = 'running' AND id = {}").format(sql.Literal(run_id))
        row = conn.execute(
            sql.SQL(
                "UPDATE pgwarden.runs SET cancel_requested = true WHERE {} "
                "RETURNING id, backend_pid"
            ).format(where)
        ).fetchone()
        if row is None:
            return CancelResult(run_id, "not-running", "no running apply to cancel")
        rid, pid = str(row[0]), int(str(row[1]))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            st = conn.execute(
                sql.SQL(
                    "SELECT r.state, EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {}) "
                    "FROM pgwarden.runs r WHERE id = {}"
                ).format(sql.Literal(pid), sql.Literal(rid))
            ).fetchone()
            if st is None or st[0] != "running" or not st[1]:
                state = "cancelled" if st is not None and st[0] != "running" else "gone"
                return CancelResult(rid, state, f"run {rid}: {st[0] if st else 'unknown'}")
            time.sleep(0.1)
        conn.execute(sql.SQL("SELECT pg_cancel_backend({})").format(sql.Literal(pid)))
        return CancelResult(
            rid,
            "signalled",
            f"run {rid} did not react within {wait_s:.0f} s; sent pg_cancel_backend to {pid}",
        )
