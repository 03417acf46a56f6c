"""The preview and the journal mark a point of no return as the data-loss guard judges it.

Before, a DROP of a table the same run created was marked POINT OF NO RETURN in the
preview and `point_of_no_return` in the journal, although the guard (rightly) let it
run without a backup: nothing that existed before the run was destroyed.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.policy import StepPreview
from tests.apply.conftest import plan_of, write_sql

_SQL = (
    "CREATE TABLE scratch (id int);\n"
    "INSERT INTO scratch VALUES (1);\n"
    "DROP TABLE scratch;\n"
    "DROP TABLE settings;\n"
)


def _marked(steps: tuple[StepPreview, ...]) -> dict[int, bool]:
    return {s.index: s.point_of_no_return for s in steps}


def test_dropping_a_table_the_run_created_is_no_point_of_no_return(
    shop: str, tmp_path: Path
) -> None:
    plan = plan_of(write_sql(tmp_path, _SQL))
    policy = GuardPolicy(env="staging", yes=True)
    dry = apply_plan(plan, database_url=shop, policy=policy, options=RunOptions(dry_run=True))
    assert _marked(dry.steps) == {0: False, 1: False, 2: False, 3: True}

    done = apply_plan(plan, database_url=shop, policy=policy)
    assert done.state == "done"
    assert _marked(done.steps) == {0: False, 1: False, 2: False, 3: True}
    with psycopg.connect(shop) as c:
        journal = c.execute(
            "SELECT idx, point_of_no_return FROM pgwarden.steps WHERE run_id = %s ORDER BY idx",
            (done.run_id,),
        ).fetchall()
    assert dict(journal) == {0: False, 1: False, 2: False, 3: True}


def test_dropping_a_table_an_earlier_run_created_is_a_point_of_no_return(
    shop: str, tmp_path: Path
) -> None:
    policy = GuardPolicy(env="staging", yes=True)
    first = plan_of(write_sql(tmp_path, "CREATE TABLE scratch (id int);\n"))
    assert apply_plan(first, database_url=shop, policy=policy).state == "done"
    drop = plan_of(write_sql(tmp_path, "DROP TABLE scratch;\n", name="002.sql"))
    dry = apply_plan(drop, database_url=shop, policy=policy, options=RunOptions(dry_run=True))
    assert _marked(dry.steps) == {0: True}
