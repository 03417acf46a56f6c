"""Workload regressions: a dropped index and a costly insert trigger are caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgwarden.rehearse.workload import load_workload
from tests.rehearse.conftest import write

WORKLOAD = """
-- name: invoices_of_account
-- weight: 20
-- params: [42]
SELECT id, amount_cents FROM invoices WHERE payment_account_id = $1 ORDER BY id DESC LIMIT 20;
-- name: insert_invoice
INSERT INTO invoices (payment_account_id, amount_cents) VALUES (7, 100);
-- name: broken
SELECT no_such_column FROM invoices;
"""

TRIGGER = """
CREATE FUNCTION audit_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM invoices WHERE amount_cents = NEW.amount_cents;
  PERFORM pg_sleep(0.002);  -- at least 2 ms per row, whatever the machine
  RETURN NEW;
END $$;
CREATE TRIGGER invoices_audit BEFORE INSERT ON invoices
    FOR EACH ROW EXECUTE FUNCTION audit_invoice();
"""


def test_workload_file_options(tmp_path: Path):
    qs = load_workload(write(tmp_path, "w.sql", WORKLOAD))
    assert [q.name for q in qs] == ["invoices_of_account", "insert_invoice", "broken"]
    assert qs[0].weight == 20
    assert "payment_account_id = 42" in qs[0].sql
    assert qs[0].location.endswith(":5:1")


def test_dropped_index_is_a_regression(run: Any, tmp_path: Path):
    plan = write(tmp_path, "001_drop.sql", "DROP INDEX invoices_payment_account_id_idx;\n")
    result = run([plan], workload_file=write(tmp_path, "w.sql", WORKLOAD))
    assert result.status == "completed"
    q = next(w for w in result.workload if w.name == "invoices_of_account")
    assert "invoices_payment_account_id_idx" in q.before.indexes
    assert "invoices_payment_account_id_idx" not in q.after.indexes
    assert "index invoices_payment_account_id_idx no longer used" in q.changes
    assert any(c.startswith("sequential scan on invoices") for c in q.changes)
    found = [f for f in result.findings if f.code == "RH201"]
    assert found and "invoices_of_account" in found[0].message
    assert " ms to " in found[0].message


def test_costly_insert_trigger_is_a_regression(run: Any, tmp_path: Path):
    plan = write(tmp_path, "001_trigger.sql", TRIGGER)
    result = run([plan], workload_file=write(tmp_path, "w.sql", WORKLOAD))
    q = next(w for w in result.workload if w.name == "insert_invoice")
    before = {name for name, _ in q.before.triggers}
    assert "invoices_audit" in {name for name, _ in q.after.triggers} - before
    assert any("trigger invoices_audit added" in c for c in q.changes)
    assert any(f.code == "RH201" and "insert_invoice" in f.message for f in result.findings)


def test_erroring_workload_query_is_reported_and_rehearsal_goes_on(run: Any, tmp_path: Path):
    plan = write(tmp_path, "001_noop.sql", "ALTER TABLE settings ADD COLUMN note text;\n")
    result = run([plan], workload_file=write(tmp_path, "w.sql", WORKLOAD))
    assert result.status == "completed"
    broken = next(w for w in result.workload if w.name == "broken")
    assert broken.before.error is not None and broken.before.error.startswith("42703")
    assert broken.after.error is not None
    others = [w for w in result.workload if w.name != "broken"]
    assert all(w.before.median_ms is not None and w.after.median_ms is not None for w in others)
    assert not any(f.code == "RH203" for f in result.findings)  # it failed before too
