"""`pgwarden apply` retrying a REINDEX ... CONCURRENTLY that timed out: the copies the
attempt left are dropped before the retry, which would otherwise skip them with a
warning (or, for REINDEX INDEX, build another copy beside them) and leave them INVALID:
the `<index>_ccnew` of REINDEX INDEX (its table is the index's), and for REINDEX TABLE
those of the table's indexes and of its TOAST index (`pg_toast.pg_toast_<oid>_index_ccnew`).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.apply.events import Event
from tests.apply.conftest import INVALID, Recorder, plan_of, scalar, write_sql


@pytest.mark.parametrize(
    ("statement", "copies"),
    [
        ("REINDEX TABLE CONCURRENTLY invoices;", {"public", "pg_toast"}),
        ("REINDEX INDEX CONCURRENTLY invoices_payment_account_id_idx;", {"public"}),
    ],
    ids=["table", "index"],
)
def test_a_timed_out_reindex_leaves_no_invalid_index(
    shop: str, tmp_path: Path, statement: str, copies: set[str]
) -> None:
    assert scalar(shop, "SELECT reltoastrelid <> 0 FROM pg_class WHERE oid = 'invoices'::regclass")
    # An older snapshot (on another table): the rebuild waits for it before marking its
    # copies valid, and times out there; dropping the copies does not wait for it.
    snapshot = psycopg.connect(shop)
    snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    snapshot.execute("SELECT count(*) FROM settings")
    recorder = Recorder()

    def release(event: Event) -> None:
        if event.kind == "retry" and not snapshot.closed:
            snapshot.rollback()

    recorder.hooks.append(release)
    try:
        result = apply_plan(
            plan_of(write_sql(tmp_path, statement), file_transaction=False),
            database_url=shop,
            observer=recorder,
            policy=GuardPolicy(env="staging"),
            options=RunOptions(limits=Limits(lock_timeout_ms=300)),
        )
    finally:
        snapshot.close()
    assert result.state == "done", recorder.kinds()
    dropped = [str(d) for e in recorder.of("cleanup") for d in e.data["dropped_invalid"]]
    assert {d.split(".", 1)[0] for d in dropped} == copies, dropped
    assert scalar(shop, INVALID) == 0


@pytest.mark.parametrize(
    ("statement", "copies"),
    [
        ("REINDEX TABLE CONCURRENTLY invoices;", {"public", "pg_toast"}),
        ("REINDEX INDEX CONCURRENTLY invoices_payment_account_id_idx;", {"public"}),
        ("REINDEX SCHEMA CONCURRENTLY public;", {"public", "pg_toast"}),
    ],
    ids=["table", "index", "schema"],
)
def test_apply_drops_the_copies_a_cancelled_run_left(
    shop: str, tmp_path: Path, statement: str, copies: set[str]
) -> None:
    """A run cancelled outside apply (psql, a `lint --fix` file that cannot name the
    copies: no catalog, or a whole schema): apply's retry drops them before rebuilding."""
    with psycopg.connect(shop, autocommit=True) as writer:
        writer.execute("BEGIN")
        writer.execute("UPDATE invoices SET status = status WHERE id = 1")  # the rebuild waits
        with psycopg.connect(shop, autocommit=True) as c:
            c.execute("SET statement_timeout = '300ms'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute(statement.encode())
        writer.execute("ROLLBACK")
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("CREATE INDEX invoices_status_ccnew ON invoices (status)")  # a user's, kept
    assert int(str(scalar(shop, INVALID))) >= len(copies)
    recorder = Recorder()
    result = apply_plan(
        plan_of(write_sql(tmp_path, statement), file_transaction=False),
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
    )
    assert result.state == "done", recorder.kinds()
    dropped = [str(d) for e in recorder.of("cleanup") for d in e.data["dropped_invalid"]]
    assert {d.split(".", 1)[0] for d in dropped} == copies, dropped
    assert scalar(shop, INVALID) == 0
    assert scalar(shop, "SELECT to_regclass('invoices_status_ccnew') IS NOT NULL") is True
