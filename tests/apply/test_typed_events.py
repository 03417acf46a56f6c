"""#13.4: one frozen dataclass per event kind, one JSON shape, one renderer per type."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg

import pgwarden.events as events_module
from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.events import (
    Blocker,
    Event,
    RunStarted,
    StepDone,
    StepFailed,
    StepStarted,
)
from pgwarden.report.events import render
from tests.apply.conftest import Recorder, plan_of, write_sql

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = ROOT / "examples" / "incident"

# The keys each kind carries besides event, step and at (docs/apply.md "Journal").
KEYS = {
    "run_started": {
        "run_id",
        "kind",
        "environment",
        "system_identifier",
        "database",
        "plan_fingerprint",
        "os_user",
        "host",
        "accept_data_loss",
        "statements",
    },
    "step_skipped": {"steps", "reason"},
    "step_started": {"steps", "attempt", "lock_timeout_ms", "statement_timeout_ms", "sql"},
    "lock_wait": {"steps", "attempt", "phase", "blockers"},
    "retry": {"steps", "attempt", "reason", "delay_ms", "sqlstate", "waited_on"},
    "step_done": {"steps", "attempt", "duration_s", "peak_blocked"},
    "step_failed": {"steps", "attempt", "error", "sqlstate", "kind"},
    "run_finished": {"state", "message", "done"},
}


def _kinds() -> list[type[Event]]:
    return [
        c
        for c in vars(events_module).values()
        if inspect.isclass(c) and issubclass(c, Event) and c is not Event
    ]


def test_each_kind_is_its_own_frozen_type_with_a_distinct_kind() -> None:
    kinds = _kinds()
    assert len(kinds) >= 20
    assert len({k.kind for k in kinds}) == len(kinds)
    started = StepStarted(
        step=3, steps=(3, 4), attempt=1, lock_timeout_ms=500, statement_timeout_ms=60_000, sql=()
    )
    try:
        started.attempt = 2  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("events must be frozen")


def test_to_dict_keeps_the_documented_keys() -> None:
    started = RunStarted(
        run_id="r1",
        run_kind="resume",
        environment="staging",
        system_identifier="42",
        database="shop",
        plan_fingerprint="f",
        os_user="me",
        host="h",
        accept_data_loss=None,
        statements=("SELECT 1",),
        at=1.5,
    )
    assert started.to_dict() == {
        "event": "run_started",
        "step": None,
        "at": 1.5,
        "run_id": "r1",
        "kind": "resume",  # the run's kind, under its documented key
        "environment": "staging",
        "system_identifier": "42",
        "database": "shop",
        "plan_fingerprint": "f",
        "os_user": "me",
        "host": "h",
        "accept_data_loss": None,
        "statements": ["SELECT 1"],
    }
    reconciled = StepDone(step=2, steps=(2,), attempt=0, reconciled="index i already valid")
    assert set(reconciled.data) == {"steps", "attempt", "reconciled"}
    failed = StepFailed(step=1, steps=(1,), error="boom", sqlstate="P0001", failure="statement")
    assert failed.data["kind"] == "statement" and failed.data["steps"] == [1]
    blocker = Blocker(
        pid=7, application="app", state="idle in transaction", xact_age_s=1.23456, query="x" * 600
    )
    wait = events_module.LockWait(
        step=0, steps=(0,), attempt=0, phase="before", blockers=(blocker,)
    )
    assert wait.data["blockers"] == [blocker.to_dict()]
    assert len(wait.data["blockers"][0]["query"]) == 500


def test_every_kind_has_a_renderer_and_user_text_stays_literal() -> None:
    from pgwarden.report.events import _RENDERERS

    missing = [k.__name__ for k in _kinds() if k not in _RENDERERS]
    assert missing == []
    failed = StepFailed(step=1, steps=(1,), error="step 1: boom [/] [bold]")
    (line,) = render(failed)
    assert line.plain == "✗ step 1 boom [/] [bold]"


def test_apply_emits_typed_events_and_the_journal_stores_their_fields(
    shop: str, holder, recorder: Recorder
) -> None:
    blocker = holder("BEGIN; SELECT count(*) FROM invoices")
    recorder.hooks.append(lambda e: blocker.commit() if e.kind == "retry" else None)
    result = apply_plan(
        plan_of(INCIDENT / "001_recreate_invoice_fk.sql"),
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(
            rewrite=True, limits=Limits(lock_timeout_ms=100, max_blocked_sessions=100)
        ),
    )
    assert result.state == "done"
    assert isinstance(recorder.events[0], RunStarted)
    assert recorder.events[0].run_id == result.run_id
    for event in recorder.events:
        assert type(event).kind == event.kind
        if event.kind in KEYS:
            expected = KEYS[event.kind]
            if event.kind == "step_done" and "reconciled" in event.data:
                expected = {"steps", "attempt", "reconciled"}
            assert set(event.data) == expected, event.kind
    with psycopg.connect(shop) as c:
        rows = c.execute(
            "SELECT kind, step, data FROM pgwarden.events WHERE run_id = %s ORDER BY id",
            (result.run_id,),
        ).fetchall()
    stored = {(k, s, orjson.dumps(d, option=orjson.OPT_SORT_KEYS)) for k, s, d in rows}
    for event in recorder.events:
        data = orjson.loads(orjson.dumps(event.data))
        assert (event.kind, event.step, orjson.dumps(data, option=orjson.OPT_SORT_KEYS)) in stored


def test_log_format_json_prints_one_line_per_event(shop: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;\n")
    env = {**os.environ, "COLUMNS": "200"}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        env.pop(var, None)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgwarden",
            "apply",
            str(path),
            "--database-url",
            shop,
            "--env",
            "staging",
            "--log-format",
            "json",
            "--journal-file",
            str(tmp_path / "j.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    lines = [orjson.loads(x) for x in p.stderr.splitlines() if x.startswith("{")]
    kinds = [x["event"] for x in lines]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    for x in lines:
        if x["event"] in KEYS:
            assert set(x) - {"event", "step", "at"} == KEYS[x["event"]], x["event"]
    local = [orjson.loads(x) for x in (tmp_path / "j.jsonl").read_bytes().splitlines()]
    assert [x["event"] for x in local] == kinds


def test_contrib_uses_the_public_cli_module_only() -> None:
    django = ROOT / "src/pgwarden/contrib/django/management/commands/pgwarden.py"
    text = django.read_text()
    assert "from pgwarden.cli.interaction import" in text
    assert "from pgwarden.cli.apply import _" not in text
