"""`lint --fix` output you can trust: lint-clean of what it fixes, and safe to run twice.

Every rule case with a mechanical statement fix, and examples/, is fixed for
each server version (15-18), linted again (none of the hazards it claims to fix,
none the original did not have), then run on a live server of that version:
once half-way (as after a timeout), then whole, then whole again (as psql would;
with `pgwarden apply` when the file's header says to retry with it). Afterwards
no index is INVALID and every constraint is validated.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import Snapshot, load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.lint.rewrite import statement_changes
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database
from tests.lint.fixed_apply import apply_fixed

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "rules" / "cases"
DEMO = "demo-stats.json"

# What the cases' statements need beyond the sample schema (invoices, payment_accounts,
# settings): a column, an index to drop, a partitioned table to detach from.
EXTRA = """
ALTER TABLE invoices ADD COLUMN reference text;
CREATE INDEX invoices_old_idx ON invoices (status);
CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
"""
PREPARE = {  # cases whose original statement needs the schema without something
    "PW105/flags_add_primary_key.sql": "ALTER TABLE payment_accounts "
    "DROP CONSTRAINT payment_accounts_pkey CASCADE",
    "PW102/flags_unnamed_lowercase.sql": "ALTER TABLE invoices "
    "DROP CONSTRAINT invoices_payment_account_id_fkey",
}
# A DETACH PARTITION ... CONCURRENTLY that completed cannot run again in SQL (it cannot
# run in a block): the fixed file's header says to retry with `pgwarden apply`, which
# records it as done. Such a file's last run goes through apply.
APPLY_RETRY = "retry with `pgwarden apply`"
# DETACH ... CONCURRENTLY leaves the partition bound as a CHECK on the partition.
DETACHED_BOUND = ("events_2023", "events_2023_at_check", "c")


def _snapshot(path: Path) -> Snapshot | None:
    first = path.read_text().split("\n", 1)[0]
    if path.is_relative_to(ROOT / "examples"):
        return load_snapshot(CASES / DEMO)
    if first.startswith("-- stats: "):
        return load_snapshot(CASES / first.removeprefix("-- stats: ").strip())
    return None


def _fixable() -> list[str]:
    out = []
    for path in [*sorted(CASES.glob("PW*/*.sql")), *sorted((ROOT / "examples").glob("*/*.sql"))]:
        snap = _snapshot(path)
        for major in (15, 18):
            plan, result = lint(
                [path], context=Context(snap, snap.catalog if snap else None, major, "x")
            )
            if any(
                f.fix is not None
                and f.step is not None
                and statement_changes(f.fix, plan.steps[f.step])
                for f in result.findings
            ):
                out.append(path.relative_to(ROOT).as_posix())
                break
    return out


FIXABLE = _fixable()


def _statements(path: Path) -> list[str]:
    return [s.text for s in parse(path.read_text())]


def _run(dsn: str, stmts: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts:
            c.execute(q)


def _half(dsn: str, stmts: list[str]) -> None:
    """The first half of the file, as a run that timed out there: an open transaction
    rolls back, what committed stays."""
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts[: max(1, len(stmts) // 2)]:
            c.execute(q)
        if c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            c.execute("ROLLBACK")


def test_fixable_cases_are_found() -> None:
    names = {Path(p).parent.name for p in FIXABLE}
    assert {"PW101", "PW102", "PW103", "PW105", "PW106", "PW111", "PW207", "incident"} <= names


@pytest.mark.parametrize("case", FIXABLE)
def test_fixed_file_lints_clean_and_runs_twice(case: str, pg_any, tmp_path: Path) -> None:
    major = pg_any.installation.major
    source = ROOT / case
    snap = _snapshot(source)
    ctx = Context(snap, snap.catalog if snap else None, major, "snapshot")
    f = tmp_path / source.name
    shutil.copy(source, f)
    key = case.removeprefix("tests/rules/cases/")
    plain = _database(pg_any, key)
    try:
        _run(plain, _statements(source))  # the original file, once
    except psycopg.Error as exc:  # e.g. REINDEX DATABASE without a name before 16
        pytest.skip(f"the original does not run on PostgreSQL {major}: {exc}")

    plan, result = lint([f], context=ctx)
    before = {x.code for x in result.findings}
    fixes = fix_plan(plan, result, snap)
    assert fixes, case
    claimed = {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    codes = {x.code for x in after.findings}
    assert not codes & claimed, (claimed, f.read_text())
    assert codes <= before, (codes - before, f.read_text())

    stmts = _statements(f)
    dsn = _database(pg_any, key)
    _half(dsn, stmts)
    _run(dsn, stmts)
    if APPLY_RETRY in f.read_text():
        apply_fixed(dsn, f)
    else:
        _run(dsn, stmts)
    fixed_state, plain_state = _state(dsn), _state(plain)
    fixed_state["constraints"] = [c for c in fixed_state["constraints"] if c[:3] != DETACHED_BOUND]
    assert not [i for i in fixed_state["indexes"] if not i[2]]  # no INVALID index left
    assert fixed_state == plain_state  # the same schema as the original makes


def _database(pg_any, key: str) -> str:
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        c.execute(EXTRA)
        if key in PREPARE:
            c.execute(PREPARE[key])
    return dsn


def _state(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    """Columns, constraints and indexes of the public schema, as the server has them."""
    with psycopg.connect(dsn) as c:
        return {
            "columns": c.execute(
                "SELECT attrelid::regclass::text, attname, format_type(atttypid, atttypmod), "
                "attnotnull FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid "
                "WHERE r.relnamespace = 'public'::regnamespace AND attnum > 0 "
                "AND NOT attisdropped ORDER BY 1, 2"
            ).fetchall(),
            "constraints": c.execute(
                "SELECT conrelid::regclass::text, conname, contype::text, convalidated, "
                "pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ).fetchall(),
            "indexes": c.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid "
                "FROM pg_index i JOIN pg_class r ON r.oid = i.indexrelid "
                "WHERE r.relnamespace = 'public'::regnamespace ORDER BY 1"
            ).fetchall(),
            "partitions": c.execute(
                "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits "
                "ORDER BY 1"
            ).fetchall(),
        }


def test_concurrent_index_fix_drops_an_invalid_leftover(pg_any, tmp_path: Path) -> None:
    """An index build that timed out leaves an INVALID index: the rerun rebuilds it
    (IF NOT EXISTS alone would keep the invalid one and the plain CREATE would fail)."""
    major = pg_any.installation.major
    f = tmp_path / "001.sql"
    f.write_text("CREATE INDEX invoices_created_at_idx ON invoices (created_at);\n")
    ctx = Context(None, None, major, "snapshot")
    plan, result = lint([f], context=ctx)
    write_fixes(fix_plan(plan, result))
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        # A concurrent build that fails half-way leaves its index behind, INVALID.
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (status)"
            )
        leftover = c.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_created_at_idx'::regclass"
        ).fetchone()
        assert leftover == (False,)
    _run(dsn, _statements(f))
    with psycopg.connect(dsn) as c:
        valid = c.execute(
            "SELECT indisvalid, indisunique FROM pg_index "
            "WHERE indexrelid = 'invoices_created_at_idx'::regclass"
        ).fetchone()
    assert valid == (True, False)  # rebuilt as the file says


MIXED = """\
ALTER TABLE invoices ADD COLUMN note text;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive CHECK (amount_cents > 0);
ALTER TABLE payment_accounts ALTER COLUMN iban SET NOT NULL;
CREATE INDEX invoices_note_idx ON invoices (note);
ALTER TABLE invoices ADD CONSTRAINT invoices_pa_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id);
"""


def test_several_fixes_in_one_file_keep_their_order(pg_any, tmp_path: Path) -> None:
    """An index on a column the same transaction adds cannot be built before it: the
    transaction is split there instead (the column commits, then the build runs)."""
    major = pg_any.installation.major
    snap = load_snapshot(CASES / DEMO)
    ctx = Context(snap, snap.catalog, major, "snapshot")
    f = tmp_path / "001.sql"
    f.write_text(MIXED)
    plan, result = lint([f], context=ctx)
    before = {x.code for x in result.findings}
    fixes = fix_plan(plan, result, snap)
    claimed = {x.code for x in fixes[0].fixed}
    assert {"PW101", "PW102", "PW103", "PW106", "PW120"} <= claimed
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    codes = {x.code for x in after.findings}
    assert not codes & claimed and codes <= before, f.read_text()
    plain = _database(pg_any, "")
    _run(plain, _statements(tmp_path / "001.sql") and [s.text for s in parse(MIXED)])
    dsn = _database(pg_any, "")
    stmts = _statements(f)
    _half(dsn, stmts)
    _run(dsn, stmts)
    _run(dsn, stmts)
    assert _state(dsn) == _state(plain)
