"""`pgwarden resume` continues the latest run only while nothing has been applied since:
after a failed run the user fixes the statement and applies again; resuming the failed
run then would run its stored, broken statement behind their back."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan, resume_run
from pgwarden.errors import UsageError
from tests.apply.conftest import plan_of, scalar, write_sql


def test_a_run_applied_since_makes_resume_refuse_and_name_the_old_run(
    shop: str, tmp_path: Path
) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD COLUMN note txet;\n", "002_note.sql")
    failed = apply_plan(plan_of(path), database_url=shop, policy=GuardPolicy(env="staging"))
    assert failed.state == "failed"
    # Before anything else ran, resume continues it (and fails the same way).
    again = resume_run(database_url=shop, policy=GuardPolicy(env="staging"))
    assert again.state == "failed" and again.run_id != failed.run_id
    path.write_text("ALTER TABLE invoices ADD COLUMN note text;\n")  # fixed, applied again
    fixed = apply_plan(plan_of(path), database_url=shop, policy=GuardPolicy(env="staging"))
    assert fixed.state == "done"
    with pytest.raises(UsageError, match=f"the latest run, {fixed.run_id}, is done") as err:
        resume_run(database_url=shop, policy=GuardPolicy(env="staging"))
    assert f"resume --run {again.run_id}" in str(err.value.hint)
    assert scalar(shop, "SELECT count(*) FROM pgwarden.runs") == 3  # no run was started
    # Named explicitly, it is continued: its stored statement, the broken one, runs again.
    named = resume_run(database_url=shop, run_id=again.run_id, policy=GuardPolicy(env="staging"))
    assert named.state == "failed" and named.outcome is not None
    assert 'column "note" of relation "invoices" already exists' in str(named.outcome.message)
