"""The watchdog cancels our statement when sessions queue behind it, waiting or holding."""

from __future__ import annotations

from pathlib import Path

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
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
            observer=recorder,
            policy=GuardPolicy(env="staging"),
            options=RunOptions(
                limits=Limits(lock_timeout_ms=60_000, max_blocked_sessions=1, max_block_ms=0)
            ),
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
            observer=recorder,
            policy=GuardPolicy(env="staging"),
            options=RunOptions(limits=Limits(max_blocked_sessions=1, max_block_ms=0)),
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


def test_the_read_timeout_cuts_only_a_server_that_does_not_answer(db: str) -> None:
    """A watchdog whose queries fail on the server (an error is an answer) leaves the guarded
    connection alone; once its queries go unanswered, the guarded read fails at once."""
    import threading

    import psycopg
    import pytest

    from pgwarden.apply.watchdog import Watchdog, WatchdogPolicy
    from pgwarden.pg.connect import connect

    policy = WatchdogPolicy(unreachable_s=1.0)
    failing = Watchdog(db, policy, threading.Event(), lambda c: bool(c.execute("SELECT 1/0")))
    with connect(db) as guarded:
        failing._guarded.append(guarded)
        with failing:
            guarded.execute("SELECT pg_sleep(3)")  # not cut: the server answered every tick
    # each tick takes 2 s: for the watchdog, the server stopped answering after 1 s
    silent = Watchdog(
        db, policy, threading.Event(), lambda c: bool(c.execute("SELECT pg_sleep(2)"))
    )
    with connect(db) as guarded:
        silent._guarded.append(guarded)
        with silent, pytest.raises(psycopg.OperationalError):
            guarded.execute("SELECT pg_sleep(30)")
        assert silent.unreachable


def test_the_watchdog_timers_are_settings_with_their_defaults(tmp_path: Path) -> None:
    """[watchdog] unreachable_s reaches the watchdog of a run, client_gone_s is status's;
    a typo names the key meant, a value under 1 s is refused."""
    import pytest

    from pgwarden.apply.policy import watchdog_policy
    from pgwarden.apply.watchdog import WatchdogPolicy
    from pgwarden.errors import ConfigError
    from pgwarden.settings import load_settings

    config = tmp_path / "pgwarden.toml"
    config.write_text("")
    assert load_settings(config).watchdog_unreachable_s == 30.0
    assert load_settings(config).watchdog_client_gone_s == 15.0
    assert WatchdogPolicy().unreachable_s == 30.0
    assert watchdog_policy(Limits()).unreachable_s == 30.0
    assert watchdog_policy(Limits(unreachable_s=2.5)).unreachable_s == 2.5
    config.write_text("[watchdog]\nunreachable_s = 3\nclient_gone_s = 2.5\n")
    settings = load_settings(config)
    assert (settings.watchdog_unreachable_s, settings.watchdog_client_gone_s) == (3.0, 2.5)
    config.write_text("[watchdog]\nunreachable = 3\n")
    with pytest.raises(ConfigError) as typo:
        load_settings(config)
    assert "did you mean `watchdog.unreachable_s`?" in str(typo.value.hint)
    config.write_text("[watchdog]\nclient_gone_s = 0.2\n")
    with pytest.raises(ConfigError, match=r"watchdog.client_gone_s must be .* at least 1"):
        load_settings(config)
