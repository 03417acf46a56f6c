"""`pgwarden apply` of a DETACH PARTITION ... CONCURRENTLY an earlier run finished or
left pending: recorded as done (after FINALIZE when pending), never a failure.

psql cannot run such a detach again ("is not a partition of"), and a detach
left pending fails ("already pending detach"); the `lint --fix` header says to
retry with `pgwarden apply`, which reads pg_inherits before the step.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from tests.apply.conftest import Recorder, plan_of, scalar, write_sql

PARTITIONED = (
    "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);"
    "CREATE TABLE events_2023 PARTITION OF events"
    " FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
)
DETACH = "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;\n"
PARTITIONS = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"


def _apply(shop: str, path: Path, recorder: Recorder) -> object:
    return apply_plan(
        plan_of(path, file_transaction=False),
        database_url=shop,
        observer=recorder,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(journal_file=str(path.with_suffix(".jsonl"))),
    )


def _reconciled(recorder: Recorder) -> list[str]:
    return [str(e.data["reconciled"]) for e in recorder.of("step_done") if "reconciled" in e.data]


def test_a_fixed_file_psql_ran_whole_is_retried_by_apply(shop: str, tmp_path: Path) -> None:
    """The `lint --fix` output of a plain detach, run whole (psql), then retried with apply
    as its header says: the detach is recorded as done, the run succeeds."""
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute(PARTITIONED)
    f = write_sql(tmp_path, "ALTER TABLE events DETACH PARTITION events_2023;\n")
    plan, found = lint([f], context=Context(None, None, 17, "snapshot"))
    write_fixes(fix_plan(plan, found))
    text = f.read_text()
    assert "retry with `pgwarden apply`" in text
    with psycopg.connect(shop, autocommit=True) as c:
        for s in parse(text):
            c.execute(s.text.encode())  # the first run, as psql -f
        with pytest.raises(psycopg.errors.UndefinedTable, match="is not a partition"):
            c.execute(DETACH.encode())  # what psql would do again
    recorder = Recorder()
    result = _apply(shop, f, recorder)
    assert getattr(result, "state", None) == "done", recorder.kinds()
    assert _reconciled(recorder) == ["events_2023 detached from events: already done"]
    assert scalar(shop, PARTITIONS) == 0


def test_apply_finishes_a_detach_left_pending(shop: str, tmp_path: Path) -> None:
    """A detach cancelled in its second transaction is finished with FINALIZE, not run
    again (which fails: "already pending detach")."""
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute(PARTITIONED)
    with psycopg.connect(shop, autocommit=True) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM events LIMIT 1")  # the detach waits for it
        with psycopg.connect(shop, autocommit=True) as c:
            c.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                c.execute(DETACH.encode())
        reader.execute("ROLLBACK")
    assert scalar(shop, "SELECT bool_and(inhdetachpending) FROM pg_inherits") is True
    recorder = Recorder()
    result = _apply(shop, write_sql(tmp_path, DETACH), recorder)
    assert getattr(result, "state", None) == "done", recorder.kinds()
    assert _reconciled(recorder) == [
        "events_2023 detached from events: finished its pending detach (FINALIZE)"
    ]
    assert scalar(shop, PARTITIONS) == 0
    assert "step_started" not in recorder.kinds()  # the detach itself did not run again
