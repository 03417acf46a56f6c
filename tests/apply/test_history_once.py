"""A step is never applied twice: what runs is decided under the apply lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import plan_of, scalar, write_sql

SETTINGS = Settings(environments={"production": Environment("production", protected=True)})
CONFIG = "[environments.production]\nprotected = true\n"


def test_a_run_confirmed_while_another_applies_the_plan_runs_nothing_twice(
    db: str, tmp_path: Path
) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    write_sql(mig, "CREATE TABLE acct (id int PRIMARY KEY, balance int);", "001.sql")
    write_sql(mig, "INSERT INTO acct VALUES (1, 0);", "002.sql")
    first = apply_plan(
        plan_of(mig),
        database_url=db,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True),
    )
    assert first.state == "done"
    write_sql(mig, "UPDATE acct SET balance = balance + 100 WHERE id = 1;", "003_bonus.sql")
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    other: list[subprocess.CompletedProcess[str]] = []

    def confirm_after_the_other_run(name: str) -> str:
        # Run B has read the history and waits at the prompt; run A applies the plan now.
        argv = [sys.executable, "-m", "pgwarden", "apply", str(mig), "--database-url", db]
        argv += ["--env", "production", "--yes", "--journal-file", str(tmp_path / "a.jsonl")]
        run = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        other.append(run)
        return name

    b = apply_plan(
        plan_of(mig),
        database_url=db,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", confirm=confirm_after_the_other_run),
    )
    assert other[0].returncode == 0, other[0].stdout + other[0].stderr
    assert b.state == "done"
    assert b.outcome is not None and b.outcome.done == ()
    assert scalar(db, "SELECT balance FROM acct") == 100
    assert scalar(db, "SELECT count(*) FROM pgwarden.applied") == 3
