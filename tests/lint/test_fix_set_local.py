"""A fix never moves a statement away from the SET LOCAL it runs under.

Before, `BEGIN; ...; SET LOCAL search_path = crm, public; CREATE INDEX ... ON customers
...; COMMIT;` was fixed into a file whose CREATE INDEX CONCURRENTLY ran after the COMMIT,
without the search_path: `relation "customers" does not exist` on its first run.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from tests.fixtures.pg import new_database

FILE = """BEGIN;
CREATE SCHEMA crm;
CREATE TABLE crm.customers (id int PRIMARY KEY, email text);
SET LOCAL search_path = crm, public;
CREATE INDEX customers_email_idx ON customers (email);
ALTER TABLE customers ADD COLUMN note text;
COMMIT;
"""


def test_statements_under_set_local_stay_in_their_transaction(pg_cluster, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(FILE)
    plan, result = lint([f], context=Context(None, None, pg_cluster.installation.major, "x"))
    write_fixes(fix_plan(plan, result))
    fixed = f.read_text()
    assert "CONCURRENTLY" not in fixed  # the build stays where the search_path holds
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        for stmt in parse(fixed):
            c.execute(stmt.text)
        made = c.execute("SELECT to_regclass('crm.customers_email_idx') IS NOT NULL").fetchone()
        noted = c.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = 'crm' AND column_name = 'note'"
        ).fetchone()
    assert (made, noted) == ((True,), (1,))
