"""--rewrite: the lint fixes replace hazardous steps, placed around transactions."""

from __future__ import annotations

from pathlib import Path

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.executor import build_units
from pgwarden.apply.journal import step_keys
from pgwarden.lint.rewrite import rewrite_plan
from tests.apply.conftest import plan_of, scalar, write_sql

INCIDENT = Path(__file__).resolve().parents[2] / "examples" / "incident"


def test_foreign_key_becomes_not_valid_in_place_and_validate_after_the_transaction() -> None:
    plan, rewrites = rewrite_plan(plan_of(INCIDENT / "001_recreate_invoice_fk.sql"))
    assert [r.code for r in rewrites] == ["PW102"]
    sqls = [" ".join(s.sql.split()) for s in plan.steps]
    assert sqls[0].startswith("ALTER TABLE invoices DROP CONSTRAINT")
    assert sqls[1].endswith("NOT VALID")
    assert sqls[2] == "ALTER TABLE invoices VALIDATE CONSTRAINT invoices_payment_account_id_fkey"
    assert plan.steps[0].transaction == plan.steps[1].transaction is not None
    assert plan.steps[2].transaction is None
    units = build_units(plan, step_keys(plan))
    assert [u.indexes for u in units] == [[0, 1], [2]]


def test_index_build_moves_out_of_the_file_transaction(tmp_path: Path) -> None:
    path = write_sql(
        tmp_path,
        "ALTER TABLE invoices ADD COLUMN note text;\n"
        "CREATE INDEX invoices_created_at_idx ON invoices (created_at);\n",
    )
    plan, rewrites = rewrite_plan(plan_of(path))
    assert [r.code for r in rewrites] == ["PW101"]
    first, second = plan.steps
    assert "CONCURRENTLY" in first.sql and first.transaction is None
    assert not first.effects.transactional
    assert second.sql.startswith("ALTER TABLE") and second.transaction is not None


def test_unique_constraint_uses_a_concurrent_index(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices ADD CONSTRAINT inv_u UNIQUE (amount_cents);")
    plan, _ = rewrite_plan(plan_of(path, file_transaction=False))
    sqls = [" ".join(s.sql.split()) for s in plan.steps]
    assert sqls[0].startswith("CREATE UNIQUE INDEX CONCURRENTLY inv_u ON invoices")
    assert sqls[1] == "ALTER TABLE invoices ADD CONSTRAINT inv_u UNIQUE USING INDEX inv_u"


def test_set_not_null_goes_through_a_validated_check(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;")
    plan, _ = rewrite_plan(plan_of(path))
    kinds = [" ".join(s.sql.split()).split(" ", 4)[3] for s in plan.steps]
    assert kinds == ["ADD", "VALIDATE", "ALTER", "DROP"]
    assert "NOT VALID" in plan.steps[0].sql
    assert [s.transaction is None for s in plan.steps] == [False, True, True, True]


def test_a_safe_plan_is_left_alone(tmp_path: Path) -> None:
    path = write_sql(tmp_path, "CREATE TABLE t (id bigint PRIMARY KEY);")
    original = plan_of(path)
    plan, rewrites = rewrite_plan(original)
    assert rewrites == () and plan is original


def test_rewritten_build_runs_after_the_function_it_uses(shop: str, tmp_path: Path) -> None:
    """`apply --rewrite` takes the concurrent build out of the file's transaction, which
    creates the function the index uses: the transaction is split there (the function
    commits, then the build runs), not the build run first ("function does not exist")."""
    path = write_sql(
        tmp_path,
        "CREATE OR REPLACE FUNCTION status_key(s text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT upper(s) $$;\n"
        "CREATE INDEX invoices_status_key_idx ON invoices ((status_key(status)));\n"
        "UPDATE settings SET value = value WHERE false;\n",
    )
    result = apply_plan(
        plan_of(path),
        database_url=shop,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(rewrite=True),
    )
    assert result.state == "done", result.outcome
    valid = scalar(
        shop,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_status_key_idx'::regclass",
    )
    assert valid is True
    plan, _ = rewrite_plan(plan_of(path))
    units = [[plan.steps[i].sql for i in u.indexes] for u in build_units(plan, step_keys(plan))]
    assert [len(u) for u in units] == [1, 1, 1], units  # the function | the build | the rest
    assert "FUNCTION" in units[0][0] and "CONCURRENTLY" in units[1][0], units
