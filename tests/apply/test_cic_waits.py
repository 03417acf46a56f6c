"""A concurrent index build waits for old transactions within the lock budget, saying for
whom, instead of timing out after 500 ms and building the whole index again."""

from __future__ import annotations

import threading
from pathlib import Path

from pgwarden.apply.api import GuardPolicy, Limits, apply_plan
from pgwarden.apply.executor import build_units
from pgwarden.apply.journal import step_keys
from pgwarden.apply.policy import derive_lock_policy
from tests.apply.conftest import Recorder, plan_of, scalar, write_sql

CIC = "CREATE INDEX CONCURRENTLY invoices_amount_idx ON invoices (amount_cents);"


def test_a_build_waits_for_an_old_snapshot_and_names_it(
    shop: str, holder, tmp_path: Path, recorder: Recorder
) -> None:
    # An open REPEATABLE READ snapshot: the build must wait for it before it can finish.
    snap = holder("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM settings")
    snap_pid = snap.info.backend_pid
    results: list[object] = []
    path = write_sql(tmp_path, CIC)
    t = threading.Thread(
        target=lambda: results.append(
            apply_plan(
                plan_of(path, file_transaction=False),
                database_url=shop,
                policy=GuardPolicy(env="staging"),
                observer=recorder,
            )
        )
    )
    t.start()
    try:
        wait = recorder.wait_for("lock_wait")
        assert wait.data["phase"] == "waiting"
        assert [b["pid"] for b in wait.data["blockers"]] == [snap_pid]
    finally:
        snap.commit()
        t.join(120)
    assert getattr(results[0], "state", None) == "done"
    assert recorder.kinds().count("step_started") == 1 and "retry" not in recorder.kinds()
    (started,) = recorder.of("step_started")
    assert started.data["lock_timeout_ms"] == 600_000
    assert scalar(shop, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                  "'invoices_amount_idx'::regclass")  # fmt: skip


def test_lock_timeouts_of_concurrent_builds(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note text;\n" + CIC)
    plan = plan_of(path, file_transaction=False)
    tx, cic = build_units(plan, step_keys(plan))
    assert derive_lock_policy(tx, None, Limits()).lock_timeout_ms == 500
    build = derive_lock_policy(cic, None, Limits())
    assert (build.lock_timeout_ms, build.total_budget_ms) == (600_000, 600_000)
    budget = derive_lock_policy(cic, None, Limits(lock_budget_s=30))
    assert (budget.lock_timeout_ms, budget.total_budget_ms) == (30_000, 30_000)
    assert derive_lock_policy(cic, None, Limits(lock_timeout_ms=800)).lock_timeout_ms == 800


def test_a_plain_reindex_of_a_schema_gets_the_short_lock_timeout(tmp_path: Path) -> None:
    """REINDEX SCHEMA (and REINDEX (CONCURRENTLY false)) also refuses a transaction block,
    but it takes SHARE / ACCESS EXCLUSIVE like any plain REINDEX: its waits queue queries,
    so it gets the short lock_timeout, not the concurrent build's whole lock budget (it
    did: builds_index read 'concurrent' from 'runs outside a transaction')."""
    sql = "REINDEX SCHEMA public;\nREINDEX (CONCURRENTLY false) TABLE invoices;\n" + CIC
    plan = plan_of(write_sql(tmp_path, sql), file_transaction=False)
    schema, table, cic = build_units(plan, step_keys(plan))
    assert derive_lock_policy(schema, None, Limits()).lock_timeout_ms == 500
    assert derive_lock_policy(table, None, Limits()).lock_timeout_ms == 500
    assert derive_lock_policy(cic, None, Limits()).lock_timeout_ms == 600_000
