"""A valid index with the definition a CREATE INDEX step builds is taken as the step's
own only when an earlier attempt of that step built it: one that was there before is
someone else's, and the statement runs as written."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from tests.apply.conftest import Recorder, plan_of, scalar, write_sql

UNNAMED = "CREATE INDEX CONCURRENTLY ON invoices (created_at);"
NAMED = "CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);"
COPIES = (
    "SELECT string_agg(c.relname || ':' || i.indisvalid, ',' ORDER BY c.relname) "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'invoices'::regclass "
    "AND pg_get_indexdef(i.indexrelid) LIKE '% USING btree (created_at)'"
)


def _apply(shop: str, path: Path, recorder: Recorder | None = None) -> object:
    return apply_plan(
        plan_of(path, file_transaction=False),
        database_url=shop,
        policy=GuardPolicy(env="staging"),
        observer=recorder,
    )


def test_an_unnamed_build_beside_an_existing_equal_index_runs(
    shop: str, tmp_path: Path, recorder: Recorder
) -> None:
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("CREATE INDEX by_hand ON invoices (created_at)")
    result = _apply(shop, write_sql(tmp_path, UNNAMED), recorder)
    assert getattr(result, "state", None) == "done"
    assert "step_started" in recorder.kinds()
    assert not [e for e in recorder.of("step_done") if e.data.get("reconciled")]
    # PostgreSQL's own behaviour for the statement: a second index, its generated name.
    assert scalar(shop, COPIES) == "by_hand:true,invoices_created_at_idx:true"


def test_a_named_build_whose_name_is_taken_fails_as_written(
    shop: str, tmp_path: Path, recorder: Recorder
) -> None:
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("CREATE INDEX invoices_created_at_idx ON invoices (created_at)")
    result = _apply(shop, write_sql(tmp_path, NAMED), recorder)
    assert getattr(result, "state", None) == "failed"
    outcome = getattr(result, "outcome", None)
    assert outcome is not None and outcome.sqlstate == "42P07", outcome
    assert scalar(shop, COPIES) == "invoices_created_at_idx:true"  # untouched
    assert scalar(shop, "SELECT count(*) FROM pgwarden.applied") == 0


def test_an_index_an_earlier_attempt_built_is_adopted(shop: str, tmp_path: Path) -> None:
    # A killed client's build that finished on the server (tests/apply/test_cic_resume.py)
    # in a shorter form: a run fails after its step_started was journalled (lock budget
    # spent), then the index appears as that attempt's backend would have built it.
    path = write_sql(tmp_path, UNNAMED)
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("CREATE INDEX by_hand ON invoices (created_at)")  # before any attempt
    first = Recorder()
    with psycopg.connect(shop) as holder:
        holder.execute("LOCK TABLE invoices IN SHARE UPDATE EXCLUSIVE MODE")
        result = apply_plan(
            plan_of(path, file_transaction=False),
            database_url=shop,
            policy=GuardPolicy(env="staging"),
            observer=first,
            options=RunOptions(limits=Limits(lock_timeout_ms=50, lock_budget_s=0.1, health=None)),
        )
    assert getattr(result, "state", None) == "failed" and "step_started" in first.kinds()
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute(UNNAMED.encode())  # what the attempt's backend finished after all
    again = Recorder()
    assert getattr(_apply(shop, path, again), "state", None) == "done"
    (done,) = again.of("step_done")
    assert done.data["reconciled"] == "index invoices_created_at_idx already valid"
    assert "step_started" not in again.kinds()
    assert scalar(shop, COPIES) == "by_hand:true,invoices_created_at_idx:true"
