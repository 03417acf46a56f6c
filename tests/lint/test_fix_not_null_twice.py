"""PW103 fixes of one column: never moved past a DROP NOT NULL, one constraint name each.

The SET NOT NULL fix adds its constraint NOT VALID where the statement was and
validates (and, before PostgreSQL 18, sets NOT NULL and drops the CHECK) after
the transaction commits. When a later statement of that transaction drops NOT
NULL of the column again, that would undo the DROP NOT NULL (the column ends NOT
NULL where the original leaves it nullable) or validate a constraint that is
gone: no fix then. Two CHECK fixes of one column get two names (on PostgreSQL 18
the NOT NULL constraint keeps the name SET NOT NULL would give it).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import psycopg

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
SET_THEN_DROP = """\
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices ALTER COLUMN status DROP NOT NULL;
"""
SET_DROP_SET = """\
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices ALTER COLUMN status DROP NOT NULL;
UPDATE invoices SET status = 'open' WHERE status IS NULL;
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
"""
TWO_TRANSACTIONS = """\
BEGIN;
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
COMMIT;
BEGIN;
ALTER TABLE invoices ALTER COLUMN status DROP NOT NULL;
COMMIT;
BEGIN;
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
COMMIT;
"""


def _fixed(tmp_path: Path, text: str, major: int) -> str:
    """`text` as lint --fix writes it for `major` (unchanged when nothing is fixed)."""
    snap = load_snapshot(CASES / "demo-stats.json")
    f = tmp_path / "001.sql"
    f.write_text(text)
    plan, result = lint([f], context=Context(snap, snap.catalog, major, "snapshot"))
    write_fixes(fix_plan(plan, result, snap))
    return f.read_text()


def _state(cluster: Cluster, text: str, runs: int) -> tuple[object, ...]:
    """status NOT NULL or not, and the CHECK / NOT NULL constraints of invoices, after
    `text` ran `runs` times (as psql -f would, file transaction included when it has
    no BEGIN of its own) on a fresh database."""
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        c.execute("UPDATE invoices SET status = 'open' WHERE status IS NULL")
        stmts = [s.text for s in parse(text)]
        wrap = not any(s.upper().startswith("BEGIN") for s in stmts)
        for _ in range(runs):
            with c.transaction() if wrap else nullcontext():
                for q in stmts:
                    c.execute(q.encode())
        row = c.execute(
            "SELECT attnotnull, array(SELECT conname::text FROM pg_constraint "
            "WHERE conrelid = 'invoices'::regclass AND contype IN ('c', 'n') ORDER BY 1) "
            "FROM pg_attribute WHERE attrelid = 'invoices'::regclass AND attname = 'status'"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_no_fix_moves_past_a_drop_not_null(pg_any: Cluster, tmp_path: Path) -> None:
    """Before: the fixed file set status NOT NULL after the commit, past the DROP NOT NULL
    that leaves it nullable."""
    fixed = _fixed(tmp_path, SET_THEN_DROP, pg_any.installation.major)
    want = _state(pg_any, SET_THEN_DROP, 1)
    assert want[0] is False
    assert _state(pg_any, fixed, 2) == want, fixed


def test_set_drop_set_in_one_transaction_runs(pg_any: Cluster, tmp_path: Path) -> None:
    """Before: both fixes named their CHECK alike; the second VALIDATE found it dropped by
    the first fix ('constraint ... does not exist')."""
    fixed = _fixed(tmp_path, SET_DROP_SET, pg_any.installation.major)
    assert _state(pg_any, fixed, 2) == _state(pg_any, SET_DROP_SET, 1), fixed


def test_two_fixes_of_one_column_get_two_names(pg_any: Cluster, tmp_path: Path) -> None:
    major = pg_any.installation.major
    fixed = _fixed(tmp_path, TWO_TRANSACTIONS, major)
    if major < 18:
        name = "invoices_status_not_null_check"
        assert f"ADD CONSTRAINT {name} " in fixed and f"ADD CONSTRAINT {name}_2 " in fixed
    assert _state(pg_any, fixed, 2) == _state(pg_any, TWO_TRANSACTIONS, 1), fixed
