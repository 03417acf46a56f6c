"""The notifier without a database: configuration, the event -> notification rules on a
controlled clock, bodies and delivery against a real local HTTP receiver."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import orjson
import pytest

from pgwarden.errors import ConfigError
from pgwarden.events import BackfillBatch, Phase, Retry, StepDone, StepStarted, UpgradeCopy
from pgwarden.notify import attach, load_notify_config, rehearsed_durations
from pgwarden.notify.config import Webhook
from pgwarden.notify.events import Tracker
from pgwarden.notify.sender import Sender
from pgwarden.settings import load_settings
from tests.notify.receiver import receiver


def _settings(tmp_path: Path, text: str) -> object:
    path = tmp_path / "pgwarden.toml"
    path.write_text(text)
    return load_settings(path)


def _config(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    from pgwarden.settings import Settings

    s = _settings(tmp_path, text)
    assert isinstance(s, Settings)
    return load_notify_config(s, environ or {})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _batch(rows: int) -> BackfillBatch:
    return BackfillBatch(
        rows=10,
        total_rows=rows,
        last_pk=rows,
        max_pk=1000,
        batch_size=10,
        batch_ms=5.0,
        progress=rows / 1000,
        eta_s=None,
    )


def _tracker(clock: Clock, **kw: float) -> Tracker:
    opts = {"stuck_after_s": 1000.0, "stuck_factor": 3.0, "progress_every_s": 5.0, **kw}
    return Tracker("backfill", clock=clock, **opts)  # type: ignore[arg-type]


def test_progress_is_rate_limited_and_the_newest_goes_out() -> None:
    clock = Clock()
    t = _tracker(clock)
    assert [n.kind for n in t.start()] == ["started"]
    sent = []
    for i in range(1, 101):  # a batch every 0.1 s for 10 s
        clock.now = 1000.0 + i / 10
        sent += t.observe(_batch(i * 10))
        sent += t.tick()
    assert [n.kind for n in sent] == ["progress", "progress"]
    assert [n.event.total_rows for n in sent if isinstance(n.event, BackfillBatch)] == [500, 1000]
    # Two batches inside the interval: nothing now; the newer one when the interval ends.
    clock.now += 1
    assert t.observe(_batch(1010)) == [] and t.observe(_batch(1020)) == [] and t.tick() == []
    clock.now += 4
    late = t.tick()
    assert [(n.kind, n.summary) for n in late] == [("progress", "backfill 102%: 1,020 rows")]
    assert [n.kind for n in t.finish(None)] == ["done"] and t.finish("failed", "x") == []


def test_stuck_when_nothing_moves_waits_do_not_count_and_it_says_when_it_moves_again() -> None:
    clock = Clock()
    t = _tracker(clock, stuck_after_s=30.0)
    t.start()
    retry = Retry(
        step=2,
        steps=(2,),
        attempt=3,
        reason="lock_timeout",
        delay_ms=400,
        sqlstate=None,
        waited_on=(),
    )
    for _ in range(5):
        clock.now += 5
        assert t.observe(retry) == [] and t.tick() == []
    clock.now += 6
    stuck = t.tick()
    assert [n.kind for n in stuck] == ["stuck"]
    assert stuck[0].details["reason"] == "no_progress" and stuck[0].event is retry
    assert "no progress for 31 s" in stuck[0].summary and "retry step 2" in stuck[0].summary
    clock.now += 100
    assert t.tick() == []  # once per stall
    moved = t.observe(Phase(message="copying rows"))
    assert [(n.kind, n.summary) for n in moved] == [("progress", "moving again: copying rows")]

    # An upgrade's initial copy is polled: the same figures again are no progress.
    copy = UpgradeCopy(
        upgrade_id="u", tables_ready=1, tables_total=3, rows_done=500, rows_total=900, copying=()
    )
    clock.now += 10
    t.observe(copy)
    for _ in range(5):
        clock.now += 5
        assert t.observe(copy) == [] and t.tick() == []
    clock.now += 6
    stuck = t.observe(copy) + t.tick()
    assert [n.kind for n in stuck] == ["stuck"] and "no progress for 31 s" in stuck[0].summary
    more = dataclasses.replace(copy, rows_done=600)
    assert [n.summary for n in t.observe(more)] == [
        "moving again: initial copy: 1 of 3 tables ready, 600 of about 900 rows"
    ]


def test_a_step_past_k_times_its_rehearsed_duration_is_stuck(tmp_path: Path) -> None:
    # The record `pgwarden rehearse` writes (rehearse/record.py, format pgwarden-rehearsal/1).
    record = {
        "format": "pgwarden-rehearsal/1",
        "fingerprint": "f" * 64,
        "status": "completed",
        "steps": [{"index": 0, "duration_s": 0.2}, {"index": 1, "duration_s": 2.0}],
    }
    (tmp_path / f"{'f' * 64}.json").write_bytes(orjson.dumps(record))
    assert rehearsed_durations("f" * 64, tmp_path) == {0: 0.2, 1: 2.0}
    assert rehearsed_durations("0" * 64, tmp_path) == {}
    from pgwarden.events import RunStarted

    clock = Clock()
    t = Tracker(
        "apply",
        stuck_after_s=1000.0,
        stuck_factor=3.0,
        progress_every_s=60.0,
        announce_on=RunStarted,
        expected=lambda fp: rehearsed_durations(fp, tmp_path),
        clock=clock,
    )
    assert t.start() == []  # apply is announced by its run, not on entry
    started = t.observe(
        RunStarted(
            run_id="r1",
            run_kind="apply",
            environment="production",
            system_identifier="1",
            database="shop",
            plan_fingerprint="f" * 64,
            os_user="ci",
            host="h",
            accept_data_loss=None,
            statements=("SELECT 1", "SELECT 2"),
        )
    )
    assert [n.kind for n in started] == ["started"] and started[0].details["statements"] == 2

    def step(i: int) -> StepStarted:
        return StepStarted(
            step=i, steps=(i,), attempt=1, lock_timeout_ms=500, statement_timeout_ms=1, sql=("x",)
        )

    t.observe(step(0))
    clock.now += 0.9  # past 3 x 0.2 s, but a step is never stuck before 1 s
    assert t.tick() == []
    t.observe(StepDone(step=0, steps=(0,), attempt=1))
    t.observe(step(1))
    clock.now += 5.9
    assert t.tick() == []
    clock.now += 0.2
    stuck = t.tick()
    assert [n.kind for n in stuck] == ["stuck"]
    assert stuck[0].details["reason"] == "past_expected" and stuck[0].details["expected_s"] == 2.0
    assert "step 1 has run 6.1 s, past 3x its rehearsed 2.00 s" in stuck[0].summary


def test_configuration_errors_and_warnings_never_show_the_url(tmp_path: Path) -> None:
    secret = "https://hooks.example.com/services/T0KEN-in-file"
    base = '[[notify.webhooks]]\nurl_env = "HOOK"\n'
    with pytest.raises(ConfigError, match=r"unknown key `formt`.*") as e:
        _config(tmp_path, base + 'formt = "slack"\n')
    assert e.value.hint == "did you mean `format`?"
    with pytest.raises(ConfigError, match="exactly one of `url_env`"):
        _config(tmp_path, f'[[notify.webhooks]]\nurl_env = "HOOK"\nurl = "{secret}"\n')
    with pytest.raises(ConfigError, match="unknown notification 'stuk'") as e:
        _config(tmp_path, base + 'events = ["stuk"]\n')
    assert e.value.hint is not None and "did you mean 'stuck'" in e.value.hint
    with pytest.raises(ConfigError, match=r"notify\.stuck_after_s must be at least 1"):
        _config(tmp_path, "[notify]\nstuck_after_s = 0\n")
    with pytest.raises(ConfigError, match=r"notify\.exit_wait_s must be at least 0 and at most 60"):
        _config(tmp_path, "[notify]\nexit_wait_s = 600\n")
    with pytest.raises(ConfigError, match=r"unknown key `notify\.stuck_after`"):
        _config(tmp_path, "[notify]\nstuck_after = 10\n")
    with pytest.raises(ConfigError) as e:
        _config(tmp_path, base, {"HOOK": "ftp://T0KEN-bad-scheme"})
    assert "webhook #1 (HOOK)" in str(e.value) and "T0KEN" not in str(e.value)

    unset = _config(tmp_path, base)
    assert not unset.enabled  # type: ignore[attr-defined]
    assert unset.problems == (  # type: ignore[attr-defined]
        "webhook #1 (HOOK): the environment variable HOOK is not set or empty; nothing is "
        "sent there",
    )
    literal = _config(tmp_path, f'[[notify.webhooks]]\nurl = "{secret}"\nformat = "slack"\n')
    assert literal.enabled  # type: ignore[attr-defined]
    (problem,) = literal.problems  # type: ignore[attr-defined]
    assert "webhook #1 (url in the configuration)" in problem and "T0KEN" not in problem
    hook = literal.webhooks[0]  # type: ignore[attr-defined]
    assert isinstance(hook, Webhook) and "T0KEN" not in repr(hook) + str(hook)


def test_slack_bodies_escape_markup_and_retries_recover_from_5xx(tmp_path: Path) -> None:
    from pgwarden.settings import Settings

    settings = _settings(
        tmp_path,
        '[[notify.webhooks]]\nurl_env = "HOOK"\nformat = "slack"\nevents = ["started", "failed"]\n',
    )
    assert isinstance(settings, Settings)
    warnings: list[str] = []
    with receiver("fail:2:503") as rx, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOK", rx.url)

        def failing_command() -> None:
            with attach(
                settings,
                command="backup create",
                env="prod & <eu>",
                database_url="postgresql://alice:pw-s3cret@db.internal:5433/shop",
                warn=warnings.append,
            ) as notifier:
                notifier(Phase(message="dumping"))  # progress: not in `events`
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_command()
    assert warnings == []
    assert len(rx.requests) == 4  # started three times (503, 503, 200), then failed
    started, failed = rx.requests[0], rx.requests[-1]
    assert rx.requests[1] == rx.requests[2] == started
    assert set(started) == {"text", "blocks"}
    section, context = failed["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].startswith(":x: *pgwarden backup create failed on prod &amp;")
    assert "(shop at db.internal:5433)" in failed["text"]
    assert "internal error: RuntimeError" in section["text"]["text"]
    assert context["type"] == "context" and context["elements"][0]["type"] == "mrkdwn"
    assert "alice" not in str(rx.requests) and "s3cret" not in str(rx.requests)
    assert all(h["Content-Type"] == "application/json" for h in rx.headers)


def test_a_final_status_is_not_retried_and_a_full_queue_drops_progress_first(
    tmp_path: Path,
) -> None:
    from pgwarden.settings import Settings

    settings = _settings(tmp_path, '[[notify.webhooks]]\nurl_env = "HOOK"\n')
    assert isinstance(settings, Settings)
    warnings: list[str] = []
    with receiver("fail:100:404") as rx, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOK", rx.url)
        with attach(settings, command="rehearse", warn=warnings.append):
            pass
    assert [r["notification"] for r in rx.requests] == ["started", "done"]  # each tried once
    assert warnings == ["2 notifications not delivered to webhook #1 (HOOK): HTTP 404"]

    with receiver("hang") as rx:
        hook = Webhook(index=1, label="webhook #1 (HOOK)", url=rx.url, timeout_s=30.0)
        sender = Sender((hook,), queue_size=3)
        sender.submit(hook, "started", b'{"n": 0}')
        for i in range(1, 10):
            sender.submit(hook, "progress", orjson.dumps({"n": i}))
        sender.submit(hook, "failed", b'{"n": 10}')
        queued = [orjson.loads(i.body)["n"] for i in sender._targets[0].queue]
        (delivery,) = sender.close(0.2)
    assert len(queued) == 3 and queued[-1] == 10  # the end survives, progress went first
    assert delivery.sent == 0 and delivery.undelivered == 11
    assert delivery.dropped == 11 - delivery.left and delivery.left in (3, 4)  # 4: one in flight


def test_notify_test_posts_once_to_each_webhook_and_says_which_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pgwarden.cli.notify import notify
    from tests.notify.receiver import closed_port

    (tmp_path / "pgwarden.toml").write_text(
        '[[notify.webhooks]]\nurl_env = "HOOK_A"\nformat = "slack"\n'
        '[[notify.webhooks]]\nurl_env = "HOOK_B"\n'
        '[[notify.webhooks]]\nurl_env = "HOOK_C"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOOK_C", raising=False)
    monkeypatch.setenv("HOOK_B", f"http://127.0.0.1:{closed_port()}/hooks/T0KEN-b")
    with receiver() as rx:
        monkeypatch.setenv("HOOK_A", rx.url)
        result = CliRunner().invoke(notify, ["test"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert re.fullmatch(r"delivered webhook #1 \(HOOK_A\) \(slack format, \d+\.\d\d s\)", lines[0])
    assert lines[1:] == [
        "failed webhook #2 (HOOK_B): connection refused",
        "not sent webhook #3 (HOOK_C): its environment variable is not set",
    ]
    (body,) = rx.requests
    assert body["text"].startswith(
        "pgwarden notify test: test notification from pgwarden"
    ) and ":bell:" in str(body)
    assert "T0KEN" not in result.output


def test_json_bodies_count_statements_and_cut_sql_and_long_session_lists() -> None:
    from pgwarden.events import Blocker, LockWait
    from pgwarden.notify.body import RunContext, json_body
    from pgwarden.notify.events import Notification

    blockers = tuple(
        Blocker(pid=i, application="app", state="active", xact_age_s=1.0, query="x" * 450)
        for i in range(25)
    )
    wait = LockWait(steps=(1,), attempt=1, phase="before", blockers=blockers)
    ctx = RunContext.of("apply", "prod", "postgresql://bob:pw@db.example:6543/shop?sslmode=require")
    body = json_body(Notification("stuck", "s", event=wait), ctx, {})
    assert (body["database"], body["server"]) == ("shop", "db.example:6543")
    assert "bob" not in str(body) and "pw" not in str(body["server"])
    event = body["event"]
    assert event["blockers_total"] == 25 and [b["pid"] for b in event["blockers"]] == list(
        range(10)
    )
    assert all(len(b["query"]) == 200 for b in event["blockers"])
    orjson.dumps(body)  # JSON-ready


def test_a_webhook_limited_to_production_hears_nothing_of_staging(tmp_path: Path) -> None:
    from pgwarden.settings import Settings

    settings = _settings(
        tmp_path, '[[notify.webhooks]]\nurl_env = "HOOK"\nenvironments = ["production"]\n'
    )
    assert isinstance(settings, Settings)
    with receiver() as rx, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOOK", rx.url)
        for env in ("staging", "production"):
            with attach(settings, command="backfill", env=env):
                pass
    assert [(r["notification"], r["environment"]) for r in rx.requests] == [
        ("started", "production"),
        ("done", "production"),
    ]


def test_stuck_names_the_blocker_and_the_last_retry_whichever_came_last() -> None:
    """apply emits Retry after an attempt and LockWait before the next: the stuck summary
    says both, whichever of them the clock caught last."""
    from pgwarden.events import Blocker, LockWait

    clock = Clock()
    t = _tracker(clock, stuck_after_s=30.0)
    t.start()
    retry = Retry(
        step=2,
        steps=(2,),
        attempt=3,
        reason="lock_timeout",
        delay_ms=400,
        sqlstate=None,
        waited_on=(),
    )
    holder = Blocker(
        pid=7, application="holder", state="idle in transaction", xact_age_s=9.0, query="LOCK t"
    )
    wait = LockWait(steps=(2,), attempt=4, phase="before", blockers=(holder,))
    t.observe(retry)
    t.observe(wait)
    clock.now += 31
    stuck = t.tick()
    assert [n.kind for n in stuck] == ["stuck"]
    assert "in the way: pid 7 holder" in stuck[0].summary, stuck[0].summary
    assert "last: retry step 2" in stuck[0].summary, stuck[0].summary
