"""Drops a column that running code may still use, with its data.

## What it does
Flags `ALTER TABLE ... DROP COLUMN` on a table that existed before the
migration, unless the column was added earlier in the same plan.

## Why is this bad?
The column's data is gone (only a backup brings it back). Code still deployed
(including the old version during a rolling deploy) that selects, inserts or
updates the column fails, and ORMs that list every column of a model fail on
every query of the table. The statement takes ACCESS EXCLUSIVE on the table,
briefly, but queues traffic while it waits. Size does not matter: this is an
error on any table.

## Example
```sql
ALTER TABLE invoices DROP COLUMN legacy_reference;
```

## Use instead
```sql
-- release 1: the application stops using invoices.legacy_reference
-- (Rails ignored_columns, Django: remove the field from the model with
-- SeparateDatabaseAndState so no SQL runs yet).
-- release 2, after a verified backup:
ALTER TABLE invoices DROP COLUMN legacy_reference;  -- pgwarden: ignore PW202 unused since release 1
```
Alembic: `op.drop_column` in a revision deployed after the code change.
Django: remove the field in two steps (state first, database later).

## Fix safety
No fix: dropping data is a decision, not a rewrite.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-DROP-COLUMN
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import existing_columns, ident, size_words
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, _cmd in existing_columns(step, ctx, "AT_DropColumn"):
        col = ident(column)
        yield Hit(
            message=f"drops column {table}.{col} and its data (ACCESS EXCLUSIVE on {table}, "
            f"blocks reads and writes, briefly); code that still reads or writes {col} fails "
            f"from this moment{size_words(ctx, table)}",
            help="stop using the column in a release before (and out of the ORM model), take a "
            "verified backup, then drop it with an ignore comment saying so",
            severity=Severity.ERROR,
        )


RULE = Rule(
    code="PW202",
    name="column-dropped",
    summary="DROP COLUMN loses the data and breaks code that still uses the column",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_DropColumn"}),
)
