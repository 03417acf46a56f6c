"""PW142: a backfill of a column the same migration adds (`ADD COLUMN c; UPDATE t SET c =
... WHERE c IS NULL`) touches every existing row: the column is NULL in all of them. The
planner cannot say (the column does not exist yet) and was taken as 'size unknown'."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.commands import lint, load_context
from pgwarden.findings import Severity
from tests.lint.test_dml_blast_radius import SCHEMA, _estimated, _pw142


def test_backfill_of_a_column_added_in_the_plan_touches_every_row(db: str, tmp_path: Path) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    f = tmp_path / "001.sql"
    f.write_text(
        "ALTER TABLE invoices ADD COLUMN flag boolean;\n"
        "UPDATE invoices SET flag = true WHERE flag IS NULL;\n"
        "ALTER TABLE invoices ADD COLUMN kind2 text DEFAULT 'a';\n"
        "UPDATE invoices SET kind2 = 'b' WHERE kind2 IS NULL;\n"
    )
    _, result = lint([f], context=load_context(database_url=db), preflight_dsn=db)
    found = _pw142(result.findings)
    assert found[2].severity is Severity.ERROR, found[2].message
    assert _estimated(found[2]) == 200_000
    # with a default, no existing row is NULL: not counted as every row
    assert 4 not in found or found[4].severity is not Severity.ERROR
