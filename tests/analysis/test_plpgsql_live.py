"""PL/pgSQL bodies against live servers 15-18 (#14.1).

The straight-line DO cases are in lock_cases.py (exact match with pg_locks, rewrites,
scans). Here: what the plan makes of a CALLed procedure, DML and branches inside a
DO (locks exact; DML scans depend on the plan), may-run statements (the model keeps
them: what the server locks is a subset), and CONCURRENTLY inside a body, which the
server always refuses, as PW130 says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pgwarden.analysis import observe as live
from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.effects import Effects
from pgwarden.analysis.parse import parse
from pgwarden.lint.engine import lint_plan
from pgwarden.pg.cluster import Cluster
from pgwarden.plan import Plan, SourceText, build_plan
from tests.fixtures.pg import new_database

SETUP = """
CREATE TABLE t (id int PRIMARY KEY, a int, b text);
CREATE INDEX t_a_idx ON t (a);
INSERT INTO t SELECT g, g, 'x' FROM generate_series(1, 20) g;
"""


@pytest.fixture
def schema(pg_any: Cluster) -> Iterator[tuple[int, psycopg.Connection[Any], Catalog]]:
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as conn:
        catalog = live.fresh_schema(conn, "plp", SETUP)
        yield pg_any.installation.major, conn, catalog


def _plan(sql: str, catalog: Catalog, major: int) -> Plan:
    return build_plan(
        [(SourceText("m.sql", sql), parse(sql, "m.sql"))], catalog=catalog, server_version=major
    )


def _pairs(effects: Effects) -> set[tuple[str, str]]:
    return {
        (lk.relation, lk.mode.pg_name) for lk in effects.locks if lk.relation not in effects.creates
    }


def _union(plan: Plan) -> Effects:
    locks = tuple(lk for s in plan.steps for lk in s.effects.locks)
    creates = tuple(c for s in plan.steps for c in s.effects.creates)
    rewrites = tuple(r for s in plan.steps for r in s.effects.rewrites)
    return Effects(locks=locks, creates=creates, rewrites=rewrites)


def test_dml_and_taken_branches_inside_a_do_block(
    schema: tuple[int, psycopg.Connection[Any], Catalog],
) -> None:
    major, conn, catalog = schema
    sql = """DO $$
DECLARE i int;
BEGIN
  FOR i IN 1..2 LOOP
    UPDATE t SET a = a + i WHERE id = i;
  END LOOP;
  IF EXISTS (SELECT 1 FROM t WHERE id = 1) THEN
    DELETE FROM t WHERE id > 15;
  ELSE
    TRUNCATE t;
  END IF;
END
$$;
"""
    plan = _plan(sql, catalog, major)
    observed = live.observe_in_transaction(conn, [plan.steps[0].sql])
    # Every branch is assumed to run: the ELSE's TRUNCATE (ACCESS EXCLUSIVE) is predicted
    # and did not run; the rest is exact.
    truncate = next(s for s in plan.steps[0].inner if s.kind == "TruncateStmt")
    ran = Effects(
        locks=tuple(lk for s in plan.steps[0].inner if s is not truncate for lk in s.effects.locks)
    )
    assert _pairs(ran) == observed.locks
    assert observed.locks <= _pairs(plan.steps[0].effects)
    assert "when `EXISTS (SELECT 1 FROM t WHERE id = 1)` does not hold" in truncate.note


def test_statement_in_an_exception_block_that_fails_is_over_approximated(
    schema: tuple[int, psycopg.Connection[Any], Catalog],
) -> None:
    """ADD COLUMN of an existing column fails; its subtransaction's locks go with it."""
    major, conn, catalog = schema
    sql = """DO $$
BEGIN
  BEGIN
    ALTER TABLE t ADD COLUMN a int;
  EXCEPTION WHEN duplicate_column THEN NULL;
  END;
END
$$;
"""
    plan = _plan(sql, catalog, major)
    observed = live.observe_in_transaction(conn, [plan.steps[0].sql])
    assert observed.locks <= _pairs(plan.steps[0].effects)
    assert ("t", "AccessExclusiveLock") in _pairs(plan.steps[0].effects)


@pytest.mark.parametrize("in_transaction", [False, True])
def test_concurrently_inside_a_do_block_always_fails(
    schema: tuple[int, psycopg.Connection[Any], Catalog], in_transaction: bool
) -> None:
    major, conn, catalog = schema
    sql = "DO $$ BEGIN CREATE INDEX CONCURRENTLY t_b_idx ON t (b); END $$"
    if in_transaction:
        conn.execute("BEGIN")
    try:
        with pytest.raises(psycopg.errors.ActiveSqlTransaction) as err:
            conn.execute(sql)
    finally:
        if in_transaction:
            conn.execute("ROLLBACK")
    said = str(err.value).splitlines()[0].removeprefix("CREATE INDEX CONCURRENTLY ")
    assert said == (
        "cannot run inside a transaction block"
        if in_transaction
        else "cannot be executed from a function"
    )
    plan = _plan(sql + ";\n", catalog, major)
    (finding,) = [f for f in lint_plan(plan).findings if f.code == "PW130"]
    assert finding.severity.value == "error"
    assert said in finding.message


def test_commit_in_a_do_block_ends_the_transaction_its_locks_live_in(
    schema: tuple[int, psycopg.Connection[Any], Catalog],
) -> None:
    """A DO block that COMMITs (outside any transaction block): the statements after a
    COMMIT, in its loop too, run in a new transaction; the ALTER's ACCESS EXCLUSIVE is
    gone (pg_locks, read in the body itself). The plan gives them transactions of their
    own, so PW121 does not say the lock is still held during the backfill."""
    major, conn, catalog = schema
    sql = """DO $$
BEGIN
  ALTER TABLE t ADD COLUMN z int;
  INSERT INTO seen SELECT 'before', count(*) FROM pg_locks
    WHERE pid = pg_backend_pid() AND relation = 't'::regclass AND mode = 'AccessExclusiveLock';
  COMMIT;
  LOOP
    UPDATE t SET z = 1 WHERE id IN (SELECT id FROM t WHERE z IS NULL LIMIT 5);
    INSERT INTO seen SELECT 'loop', count(*) FROM pg_locks
      WHERE pid = pg_backend_pid() AND relation = 't'::regclass AND mode = 'AccessExclusiveLock';
    EXIT WHEN (SELECT count(*) FROM t WHERE z IS NULL) = 0;
    COMMIT;
  END LOOP;
END
$$;
"""
    conn.execute("CREATE TABLE seen (at text, n int)")
    conn.execute(sql)
    seen = conn.execute("SELECT at, max(n), count(*) FROM seen GROUP BY at ORDER BY at").fetchall()
    assert seen == [("before", 1, 1), ("loop", 0, 4)]
    plan = _plan(sql, catalog, major)
    inner = plan.steps[0].inner
    assert [s.kind for s in inner] == [
        "AlterTableStmt",
        "InsertStmt",
        "UpdateStmt",
        "InsertStmt",
        "SelectStmt",
    ]
    alter, before, *looped = [s.transaction for s in inner]
    assert alter == before and alter not in looped
    result = lint_plan(plan)
    after_commit = {s.location.line for s in inner[2:]}
    assert not [f for f in result.findings if f.code == "PW121" and f.location.line in after_commit]


BODY = """BEGIN
  ALTER TABLE t ADD COLUMN z int;
  CREATE INDEX t_b_idx ON t (b);
  UPDATE t SET b = 'y' WHERE id = 1;
END"""
FUNCTION = "CREATE FUNCTION backfill() RETURNS void LANGUAGE plpgsql"


@pytest.mark.parametrize(
    ("routine", "caller", "note"),
    [
        ("CREATE PROCEDURE backfill() LANGUAGE plpgsql", "CALL backfill();", "procedure CALL"),
        (FUNCTION, "SELECT backfill();", "function SELECT"),
        (FUNCTION, "DO $$ BEGIN PERFORM backfill(); END $$;", "function PERFORM"),
    ],
)
def test_called_routine_locks_what_the_plan_says(
    schema: tuple[int, psycopg.Connection[Any], Catalog], routine: str, caller: str, note: str
) -> None:
    """A PL/pgSQL procedure the plan creates, run by CALL, or a function, run by
    `SELECT f()` or a body's PERFORM: its statements are the call's (supabase/storage's
    migrate_calculate_sentinel_prefixes, PERFORMed after a CREATE INDEX in the same DO
    block: the real-project sweep; a function's call locked nothing before)."""
    major, conn, catalog = schema
    note, verb = note.split()
    sql = f"{routine} AS $$\n{BODY}\n$$;\n{caller}\n"
    plan = _plan(sql, catalog, major)
    call = plan.steps[1]
    assert [s.kind for s in call.inner] == ["AlterTableStmt", "IndexStmt", "UpdateStmt"]
    assert f"{note} backfill (created at line 1), run by the {verb}" in call.inner[0].note
    observed = live.observe_in_transaction(conn, [s.sql for s in plan.steps])
    predicted = _union(plan)
    assert _pairs(predicted) == observed.locks
    assert set(predicted.rewrites) == observed.rewrites
    assert set(predicted.creates) == observed.created
