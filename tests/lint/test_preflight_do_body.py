"""PW401 reads DO bodies: a constraint added inside `DO $$ ... $$` (as `lint --fix`
writes them, guarded by IF NOT EXISTS) is counted like a top-level one."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.lint.test_preflight import SCHEMA, _pw401

FIXED = """DO $pgwarden$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_constraint
                 WHERE conrelid = 'invoices'::regclass AND conname = 'amount_ok') THEN
    ALTER TABLE invoices ADD CONSTRAINT amount_ok CHECK (amount >= 0);
  END IF;
END $pgwarden$;
"""

FILLED = """DO $$ BEGIN
  UPDATE invoices SET amount = 0 WHERE amount < 0;
  ALTER TABLE invoices ADD CONSTRAINT amount_ok CHECK (amount >= 0);
END $$;
"""


def test_constraints_inside_do_bodies_are_counted(db: str, tmp_path: Path) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    found = _pw401(db, tmp_path, FIXED)
    assert list(found) == [4]  # the ALTER's own line, inside the block
    assert found[4].startswith("1 existing row(s) violate CHECK (amount >= 0) on invoices")
    # the body's earlier UPDATE is folded into the count, as at top level
    assert _pw401(db, tmp_path, FILLED) == {}
