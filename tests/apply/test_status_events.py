"""`pgwarden status` lists a run's latest events oldest first, with what each says, and
its JSON keeps the event's own kind (a step_failed's failure class is `failure`)."""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
from click.testing import CliRunner

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from tests.apply.conftest import plan_of, write_sql


def _status(shop: str, *args: str) -> str:
    from pgwarden.cli.apply import COMMANDS

    command = next(c for c in COMMANDS if c.name == "status")
    result = CliRunner().invoke(command, ["--database-url", shop, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_status_events_in_order_with_their_kind(shop: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note text;\n")
    with psycopg.connect(shop) as holder:
        holder.execute("LOCK TABLE invoices IN ACCESS SHARE MODE")
        result = apply_plan(
            plan_of(path),
            database_url=shop,
            policy=GuardPolicy(env="staging"),
            options=RunOptions(limits=Limits(lock_timeout_ms=50, lock_budget_s=0.5, health=None)),
        )
    assert result.state == "failed"
    (run,) = orjson.loads(_status(shop, "--format", "json"))["runs"]
    kinds = [e["kind"] for e in run["events"]]
    assert kinds[0] == "step_failed" and set(kinds[1:]) == {"retry"}, kinds  # latest first
    assert run["events"][0]["failure"] == "lock"
    lines = _status(shop).splitlines()
    text = [ln.strip() for ln in lines if " retry step 0" in ln or " step_failed step 0" in ln]
    assert (
        text[-1].split(" ", 1)[1].startswith("step_failed step 0: step 0: lock not acquired after ")
    ), lines
    assert text[-1].endswith("(budget 0.5 s)")  # was "(budget 0 s)"
    assert all(ln.split(" ", 1)[1] == "retry step 0: lock_timeout" for ln in text[:-1]), text
