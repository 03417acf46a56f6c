"""`pgwarden apply` retrying a REINDEX TABLE CONCURRENTLY that timed out: the copies of
the table's indexes the attempt left are dropped before the retry, the copy of its
TOAST index (`pg_toast.pg_toast_<oid>_index_ccnew`) included, which the retry would
otherwise skip with a warning and leave INVALID."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.apply.events import Event
from tests.apply.conftest import INVALID, Recorder, plan_of, scalar, write_sql


def test_a_timed_out_reindex_table_leaves_no_invalid_toast_index(shop: str, tmp_path: Path) -> None:
    assert scalar(shop, "SELECT reltoastrelid <> 0 FROM pg_class WHERE oid = 'invoices'::regclass")
    # An older snapshot (on another table): the rebuild waits for it before marking its
    # copies valid, and times out there; dropping the copies does not wait for it.
    writer = psycopg.connect(shop)
    writer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    writer.execute("SELECT count(*) FROM settings")
    recorder = Recorder()

    def release(event: Event) -> None:
        if event.kind == "retry" and not writer.closed:
            writer.rollback()

    recorder.hooks.append(release)
    try:
        result = apply_plan(
            plan_of(
                write_sql(tmp_path, "REINDEX TABLE CONCURRENTLY invoices;"), file_transaction=False
            ),
            database_url=shop,
            observer=recorder,
            policy=GuardPolicy(env="staging"),
            options=RunOptions(limits=Limits(lock_timeout_ms=300)),
        )
    finally:
        writer.close()
    assert result.state == "done", recorder.kinds()
    dropped = [d for e in recorder.of("cleanup") for d in e.data["dropped_invalid"]]
    assert any(d.startswith("pg_toast.") for d in dropped), dropped
    assert scalar(shop, INVALID) == 0
