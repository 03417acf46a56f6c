"""apply end to end on a real cluster: history, skips, lock guard, failures mid-plan."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan, status
from pgwarden.apply.guards import LockPolicy
from tests.apply.conftest import Recorder, plan_of, scalar, write_sql

INCIDENT = Path(__file__).resolve().parents[2] / "examples" / "incident"


def test_apply_records_history_and_a_rerun_skips_everything(
    shop: str, tmp_path: Path, recorder: Recorder
) -> None:
    plan = plan_of(INCIDENT / "001_recreate_invoice_fk.sql")
    journal = tmp_path / "journal.jsonl"
    first = apply_plan(
        plan,
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(rewrite=True, journal_file=journal),
    )
    assert first.state == "done"
    assert first.outcome is not None and first.outcome.done == (0, 1, 2)
    assert scalar(
        shop,
        "SELECT convalidated FROM pg_constraint WHERE conname = 'invoices_payment_account_id_fkey'",
    )
    assert scalar(shop, "SELECT count(*) FROM pgwarden.applied") == 3
    kinds = recorder.kinds()
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("step_done") == 2  # the transaction [0, 1] and the VALIDATE

    again = apply_plan(
        plan, database_url=shop, policy=GuardPolicy(env="staging"), options=RunOptions(rewrite=True)
    )
    assert again.state == "done"
    assert again.outcome is not None and again.outcome.skipped == (0, 1, 2)
    assert again.outcome.done == ()

    lines = [orjson.loads(x) for x in journal.read_bytes().splitlines()]
    assert {x["run"] for x in lines} == {first.run_id}
    assert lines[0]["event"] == "run_started" and lines[0]["environment"] == "staging"
    runs = status(shop).runs
    assert [r.state for r in runs] == ["done", "done"]
    assert [s.state for s in runs[0].steps] == ["skipped"] * 3


def test_dry_run_changes_nothing_and_marks_the_point_of_no_return(
    shop: str, tmp_path: Path
) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices DROP COLUMN status;")
    result = apply_plan(
        plan_of(path),
        database_url=shop,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(dry_run=True),
    )
    assert result.state == "dry-run"
    assert [s.point_of_no_return for s in result.steps] == [True]
    assert scalar(shop, "SELECT to_regclass('pgwarden.runs')") is None
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'invoices' AND column_name = 'status'",
        )
        == 1
    )


def test_lock_wait_names_the_blocker_retries_and_then_succeeds(
    shop: str, holder, recorder: Recorder
) -> None:
    blocker = holder("BEGIN; SELECT count(*) FROM invoices")
    blocker_pid = blocker.info.backend_pid

    def release_after_first_retry(event) -> None:
        if event.kind == "retry":
            blocker.commit()

    recorder.hooks.append(release_after_first_retry)
    plan = plan_of(INCIDENT / "001_recreate_invoice_fk.sql")
    result = apply_plan(
        plan,
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(
            rewrite=True, limits=Limits(lock_timeout_ms=100, max_blocked_sessions=100)
        ),
    )
    assert result.state == "done"
    waits = recorder.of("lock_wait")
    assert waits and waits[0].data["blockers"][0]["pid"] == blocker_pid
    assert waits[0].data["blockers"][0]["application"] == "lock-holder"
    kinds = recorder.kinds()
    assert kinds.index("lock_wait") < kinds.index("step_started") < kinds.index("retry")
    retry = recorder.of("retry")[0]
    assert retry.data["reason"] == "lock_timeout" and retry.data["sqlstate"] == "55P03"
    assert all(e.data["lock_timeout_ms"] == 100 for e in recorder.of("step_started"))


def test_lock_budget_exhausted_stops_with_nothing_applied(
    shop: str, holder, recorder: Recorder, tmp_path: Path
) -> None:
    holder("BEGIN; SELECT count(*) FROM invoices")
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note text;")
    result = apply_plan(
        plan_of(path),
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(
            limits=Limits(lock_timeout_ms=50, lock_budget_s=1.0, max_blocked_sessions=100)
        ),
    )
    assert result.state == "failed"
    assert result.outcome is not None and "lock not acquired" in (result.outcome.message or "")
    assert len(recorder.of("retry")) >= 1
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'invoices' AND column_name = 'note'",
        )
        == 0
    )
    run = status(shop).runs[0]
    assert run.state == "failed" and run.steps[0].state == "failed"


def test_a_statement_failing_mid_plan_keeps_earlier_steps_and_rerun_resumes(
    shop: str, tmp_path: Path, recorder: Recorder
) -> None:
    path = write_sql(
        tmp_path,
        "ALTER TABLE invoices ADD COLUMN note text;\n"
        "ALTER TABLE invoices ALTER COLUMN missing SET DEFAULT 1;\n"
        "ALTER TABLE invoices ADD COLUMN later text;\n",
    )
    result = apply_plan(
        plan_of(path, file_transaction=False),
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
    )
    assert result.state == "failed"
    assert result.outcome is not None and result.outcome.done == (0,) and result.outcome.step == 1
    assert result.outcome.sqlstate == "42703"
    assert [s.state for s in status(shop).runs[0].steps] == ["done", "failed", "pending"]
    path.write_text(
        "ALTER TABLE invoices ADD COLUMN note text;\n"
        "ALTER TABLE invoices ALTER COLUMN note SET DEFAULT 'x';\n"
        "ALTER TABLE invoices ADD COLUMN later text;\n"
    )
    again = apply_plan(
        plan_of(path, file_transaction=False), database_url=shop, policy=GuardPolicy(env="staging")
    )
    assert again.state == "done"
    assert again.outcome is not None and again.outcome.skipped == (0,)


def test_a_failed_transaction_rolls_back_all_of_its_steps(shop: str, tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "ALTER TABLE invoices ADD COLUMN note text;\nSELECT 1/0;\n",
    )
    result = apply_plan(plan_of(path), database_url=shop, policy=GuardPolicy(env="staging"))
    assert result.state == "failed"
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'invoices' AND column_name = 'note'",
        )
        == 0
    )
    assert scalar(shop, "SELECT count(*) FROM pgwarden.applied") == 0
    # the message names the statement that failed, not the transaction's first one
    message = result.outcome.message if result.outcome is not None else ""
    assert message is not None and message.startswith(f"step 1 ({path}:2:1) failed:"), message


def test_timeouts_in_the_plan_are_owned_by_the_guard(
    shop: str, tmp_path: Path, recorder: Recorder
) -> None:
    path = write_sql(tmp_path, "SET lock_timeout = 0;\nALTER TABLE settings ADD COLUMN note text;")
    result = apply_plan(
        plan_of(path, file_transaction=False),
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
    )
    assert result.state == "done"
    assert [s.state for s in result.steps] == ["skipped", "pending"]
    assert [e.data["lock_timeout_ms"] > 0 for e in recorder.of("step_started")] == [True]


def test_policy_refuses_a_wait_without_timeout() -> None:
    with pytest.raises(ValueError, match="never wait without a timeout"):
        LockPolicy(lock_timeout_ms=0)


def test_another_apply_running_is_refused(shop: str, tmp_path: Path, holder) -> None:
    from pgwarden.errors import Refused

    blocker = holder("BEGIN; SELECT count(*) FROM invoices")
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note text;")
    started = threading.Event()
    results: list[object] = []

    def first() -> None:
        results.append(
            apply_plan(
                plan_of(path),
                database_url=shop,
                observer=lambda e: started.set() if e.kind == "step_started" else None,
                policy=GuardPolicy(env="staging"),
                options=RunOptions(limits=Limits(lock_timeout_ms=50, max_blocked_sessions=100)),
            )
        )

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(60)
    with pytest.raises(Refused, match="another pgwarden apply"):
        apply_plan(plan_of(path), database_url=shop, policy=GuardPolicy(env="staging"))
    blocker.commit()
    t.join(60)
    assert getattr(results[0], "state", None) == "done"
