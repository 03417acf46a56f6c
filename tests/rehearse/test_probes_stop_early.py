"""Probes stopped before their threads started (Ctrl-C or an error while they connect)
stop cleanly, so the error that stopped them is the one reported (real server).

Before, `stop` joined threads never started: 'RuntimeError: cannot join thread before it
is started' replaced the error, and Ctrl-C at that moment of a rehearsal printed
'pgwarden: error: internal error: RuntimeError: ...'."""

from __future__ import annotations

import secrets
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.rehearse.datagen import TablePlan, fill, read_tables
from pgwarden.rehearse.probes import ProbeSet


def test_probes_stopped_while_connecting_leave_the_first_error(db: str) -> None:
    role = f"probes_{secrets.token_hex(3)}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id bigserial PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE b (id bigserial PRIMARY KEY, v text)")
        tables = read_tables(conn)
        fill(conn, tables, [TablePlan(n, 100) for n in tables])
        # two sessions allowed: a's reader and writer connect, b's reader is refused
        conn.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 2")
    params = conninfo_to_dict(db)
    params["user"] = role
    probes = ProbeSet(make_conninfo(**params), tables, ["a", "b"], time.perf_counter())  # type: ignore[arg-type]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            _start_and_stop(probes)
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


def _start_and_stop(probes: ProbeSet) -> None:
    """As the rehearsal runs them: stop in a `finally`, whatever start raised."""
    try:
        probes.start()
    finally:
        probes.stop()
