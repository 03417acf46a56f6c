"""PW401 and NOT VALID: PostgreSQL checks no existing row when a constraint is added NOT
VALID; VALIDATE CONSTRAINT does, so that is where the rejected rows are counted."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.lint.test_preflight import SCHEMA, _pw401

CHECK = "ALTER TABLE invoices ADD CONSTRAINT amount_ok CHECK (amount >= 0) NOT VALID;\n"
FK = (
    "ALTER TABLE invoices ADD CONSTRAINT account_fk FOREIGN KEY (account_id) "
    "REFERENCES accounts NOT VALID;\n"
)
VALIDATE = (
    "ALTER TABLE invoices VALIDATE CONSTRAINT amount_ok;\n"
    "ALTER TABLE invoices VALIDATE CONSTRAINT account_fk;\n"
)


def test_not_valid_constraints_are_counted_at_their_validate(db: str, tmp_path: Path) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    assert _pw401(db, tmp_path, CHECK + FK) == {}  # the server accepts both as they are
    found = _pw401(db, tmp_path, CHECK + FK + VALIDATE)
    assert sorted(found) == [3, 4]
    assert found[3].startswith("1 existing row(s) violate CHECK (amount >= 0) on invoices")
    assert found[4].startswith("3 existing row(s) violate FOREIGN KEY invoices(account_id)")


def test_validate_of_a_constraint_the_database_has(db: str, tmp_path: Path) -> None:
    # the textbook two steps in two migrations: NOT VALID already ran, VALIDATE is new
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        c.execute(CHECK + FK)
    found = _pw401(db, tmp_path, VALIDATE)
    assert sorted(found) == [1, 2]
    assert found[1].startswith("1 existing row(s) violate CHECK (amount >= 0) on invoices")
    assert found[2].startswith("3 existing row(s) violate FOREIGN KEY invoices(account_id)")
    with psycopg.connect(db, autocommit=True) as c:  # once the rows are fixed: quiet
        c.execute("UPDATE invoices SET amount = 0 WHERE amount < 0")
        c.execute("UPDATE invoices SET account_id = 1 WHERE account_id > 10")
    assert _pw401(db, tmp_path, VALIDATE) == {}
