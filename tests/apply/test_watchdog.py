"""The watchdog cancels our statement when sessions queue behind it, waiting or holding."""

from __future__ import annotations

from pathlib import Path

from pgwarden.apply.api import Limits, apply_plan
from tests.apply.conftest import Readers, Recorder, plan_of, scalar, write_sql


def test_cancels_a_lock_wait_that_traffic_queues_behind_then_completes(
    shop: str, holder, recorder: Recorder, tmp_path: Path
) -> None:
    blocker = holder("BEGIN; SELECT count(*) FROM invoices")

    def release_after_first_cancel(event) -> None:
        if event.kind == "watchdog_cancel":
            blocker.commit()

    recorder.hooks.append(release_after_first_cancel)
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note text;")
    with Readers(shop, 4) as readers:
        result = apply_plan(
            plan_of(path),
            database_url=shop,
            env="staging",
            observer=recorder,
            # a lock_timeout this long would let traffic pile up; only the watchdog yields
            limits=Limits(lock_timeout_ms=60_000, max_blocked_sessions=1, max_block_ms=0),
        )
    assert result.state == "done"
    cancel = recorder.of("watchdog_cancel")[0]
    assert cancel.data["reason"] == "blocking-while-waiting"
    blocked = {b["pid"] for b in cancel.data["blocked"]}
    assert len(blocked) > 1 and blocked <= readers.pids
    kinds = recorder.kinds()
    assert kinds.index("watchdog_cancel") < kinds.index("retry") < kinds.index("step_done")
    assert recorder.of("retry")[0].data["reason"] == "blocking-while-waiting"


def test_cancels_a_step_holding_its_lock_too_long_and_stops_with_nothing_applied(
    shop: str, recorder: Recorder, tmp_path: Path
) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note text;\nSELECT pg_sleep(60);\n")
    with Readers(shop, 4):
        result = apply_plan(
            plan_of(path),
            database_url=shop,
            env="staging",
            observer=recorder,
            limits=Limits(max_blocked_sessions=1, max_block_ms=0),
        )
    assert result.state == "failed"
    assert result.outcome is not None and "holds locks" in (result.outcome.message or "")
    reasons = [e.data["reason"] for e in recorder.of("watchdog_cancel")]
    assert reasons == ["blocking-while-holding", "blocking-while-holding"]
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'invoices' AND column_name = 'note'",
        )
        == 0
    )
    # who was blocked is journalled in the database
    assert (
        scalar(
            shop,
            "SELECT count(*) FROM pgwarden.events WHERE kind = 'watchdog_cancel' "
            "AND jsonb_array_length(data->'blocked') > 0",
        )
        == 2
    )
