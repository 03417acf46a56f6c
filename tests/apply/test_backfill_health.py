"""Backfill in batches, resumable from the journal; the health gate pauses and gives up."""

from __future__ import annotations

import threading

import pytest

from pgwarden.apply.backfill import BackfillSpec, run_backfill
from pgwarden.apply.events import Event
from pgwarden.apply.health import HealthPolicy, check_health, wait_until_healthy
from pgwarden.errors import InputError
from tests.apply.conftest import Readers, Recorder, scalar


def test_backfill_updates_in_batches_and_resumes_after_a_cancel(shop: str) -> None:
    spec = BackfillSpec(
        "invoices",
        "status = 'migrated'",
        "status = 'open'",
        batch_size=100,
        min_batch_size=100,
        max_batch_size=100,
    )
    cancel = threading.Event()
    seen: list[Event] = []

    def stop_after_three(event: Event) -> None:
        seen.append(event)
        if len(seen) == 3:
            cancel.set()

    first = run_backfill(shop, spec, observer=stop_after_three, cancel=cancel)
    assert first.state == "cancelled" and first.batches == 3
    assert scalar(shop, "SELECT count(*) FROM invoices WHERE status = 'migrated'") == first.rows
    assert scalar(shop, "SELECT last_pk FROM pgwarden.backfills") == first.last_pk == 300

    second = run_backfill(shop, spec)
    assert second.state == "done" and second.resumed_from == 300
    assert scalar(shop, "SELECT count(*) FROM invoices WHERE status = 'open'") == 0
    assert scalar(shop, "SELECT count(*) FROM invoices WHERE status = 'paid'") == 200
    progress = [e.data["progress"] for e in seen]
    assert progress == sorted(progress)


def test_backfill_rejects_statements_in_its_expressions(shop: str) -> None:
    with pytest.raises(InputError):
        run_backfill(shop, BackfillSpec("invoices", "status = 'x'; DROP TABLE invoices"))
    assert scalar(shop, "SELECT count(*) FROM invoices") == 2_000


def test_health_gate_reports_lock_waiters_and_gives_up_at_the_deadline(
    shop: str, holder, recorder: Recorder
) -> None:
    import psycopg

    holder("BEGIN; LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
    policy = HealthPolicy(max_lock_waiters=1, deadline_s=1.0, poll_interval_ms=100)
    with Readers(shop, 3), psycopg.connect(shop, autocommit=True) as conn:
        from tests.apply.conftest import wait_until

        wait_until(
            shop, "SELECT count(*) >= 2 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )
        health = wait_until_healthy(conn, policy, cancel=threading.Event(), emit=recorder, step=0)
        assert not health.ok and health.lock_waiters >= 2
        pause = recorder.of("health_pause")[0]
        assert "waiting on locks" in pause.data["reasons"][0]
        # the lock holder goes away: healthy again
        scalar(
            shop,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'lock-holder'",
        )
        wait_until(shop, "SELECT count(*) = 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        assert check_health(conn, policy).ok
