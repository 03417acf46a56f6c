"""The history of a file is the same with or without --rewrite: a statement applied as
written is not run again as its rewrite, nor the reverse, and history rows an earlier
version wrote for rewritten statements still count."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.journal import step_keys
from pgwarden.lint.rewrite import rewrite_plan
from tests.apply.conftest import Recorder, plan_of, scalar, write_sql

MIGRATION = (
    "CREATE INDEX ON invoices (created_at);\n"
    "ALTER TABLE invoices ADD CONSTRAINT inv_acct FOREIGN KEY (payment_account_id) "
    "REFERENCES payment_accounts (id);\n"
    "ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;\n"
)
INDEXES = (
    "SELECT count(*) FROM pg_index WHERE indrelid = 'invoices'::regclass "
    "AND pg_get_indexdef(indexrelid) LIKE '% USING btree (created_at)'"
)


def _apply(shop: str, path: Path, *, rewrite: bool) -> Recorder:
    seen = Recorder()
    result = apply_plan(
        plan_of(path),
        database_url=shop,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(rewrite=rewrite),
        observer=seen,
    )
    assert result.state == "done", result.outcome
    return seen


def _schema(shop: str) -> tuple[object, ...]:
    return (
        scalar(shop, INDEXES),
        scalar(shop, "SELECT convalidated FROM pg_constraint WHERE conname = 'inv_acct'"),
        scalar(
            shop,
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'invoices'::regclass "
            "AND attname = 'status'",
        ),
        scalar(shop, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'invoices'::regclass"),
    )


def test_applied_as_written_then_with_rewrite_runs_nothing(shop: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, MIGRATION, "002_fk.sql")
    _apply(shop, path, rewrite=False)
    before = _schema(shop)
    assert before[:3] == (1, True, True)
    again = _apply(shop, path, rewrite=True)
    assert "step_started" not in again.kinds(), again.kinds()  # no second index, no error
    assert _schema(shop) == before


def test_applied_with_rewrite_then_as_written_runs_nothing(shop: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, MIGRATION, "002_fk.sql")
    first = _apply(shop, path, rewrite=True)
    assert len(first.of("step_done")) >= 4  # the rewrite ran in parts
    after = _schema(shop)
    assert after[:3] == (1, True, True)
    again = _apply(shop, path, rewrite=False)
    assert "step_started" not in again.kinds(), again.kinds()
    assert _schema(shop) == after


def test_history_of_rewritten_statements_from_earlier_versions_counts(
    shop: str, tmp_path: Path
) -> None:
    path = write_sql(tmp_path, MIGRATION, "002_fk.sql")
    _apply(shop, path, rewrite=True)
    # Earlier versions keyed each rewritten statement on its own text: write the history
    # as they did.
    rewritten, _ = rewrite_plan(plan_of(path))
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("DELETE FROM pgwarden.applied")
        for step, key in zip(rewritten.steps, step_keys(rewritten), strict=True):
            c.execute(
                "INSERT INTO pgwarden.applied (key, checksum, sql, path, line, run_id) "
                "VALUES (%s, '', %s, %s, %s, 'old')",
                [key, step.sql, step.location.path, step.location.line],
            )
    after = _schema(shop)
    again = _apply(shop, path, rewrite=True)
    assert "step_started" not in again.kinds(), again.kinds()
    assert _schema(shop) == after


def test_a_rewrite_stopped_between_its_parts_continues_with_the_rest(
    shop: str, tmp_path: Path
) -> None:
    # NOT VALID is added and recorded; VALIDATE then fails on a row that breaks the key.
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_payment_account_id_fkey")
        c.execute("UPDATE invoices SET payment_account_id = -1 WHERE id = 1")
    path = write_sql(
        tmp_path,
        "ALTER TABLE invoices ADD CONSTRAINT inv_acct FOREIGN KEY (payment_account_id) "
        "REFERENCES payment_accounts (id);\n",
        "003_fk.sql",
    )
    failed = apply_plan(
        plan_of(path),
        database_url=shop,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(rewrite=True),
    )
    assert failed.state == "failed"
    assert (
        scalar(shop, "SELECT convalidated FROM pg_constraint WHERE conname = 'inv_acct'") is False
    )
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("UPDATE invoices SET payment_account_id = 1 WHERE id = 1")
    again = _apply(shop, path, rewrite=True)
    started = [" ".join(e.data["sql"][0].split()) for e in again.of("step_started")]
    assert started == ["ALTER TABLE invoices VALIDATE CONSTRAINT inv_acct"]
    assert scalar(shop, "SELECT convalidated FROM pg_constraint WHERE conname = 'inv_acct'")
