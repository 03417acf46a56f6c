"""Drops NOT NULL from a column that code may rely on.

## What it does
Flags `ALTER TABLE ... ALTER COLUMN c DROP NOT NULL` on a table that existed
before the migration, unless the column was added earlier in the plan or is
known to be nullable already (the catalog of `--database-url` / `--stats`, or
the migration's own word: Alembic's `existing_nullable=True`), where the
statement changes nothing.

## Why is this bad?
Readers still deployed assume the column always has a value: the moment a
new writer stores NULL, old code that reads it crashes or, worse, silently
treats NULL as zero or empty. Putting NOT NULL back later needs a scan (see
PW103) and a cleanup of the NULLs written meanwhile. The statement itself is
quick but takes ACCESS EXCLUSIVE.

## Example
```sql
ALTER TABLE invoices ALTER COLUMN payment_account_id DROP NOT NULL;
```

## Use instead
```sql
-- release 1: every reader handles a NULL payment_account_id.
-- release 2:
-- pgwarden: ignore PW211 readers handle NULL since release 1
ALTER TABLE invoices ALTER COLUMN payment_account_id DROP NOT NULL;
```
Deploy readers that handle NULL first, then relax the column, and say so in
an ignore comment. Alembic: `op.alter_column(..., nullable=True)`. Django:
`AlterField(null=True)`, both in a release after the readers.

## Fix safety
No fix: the order of releases is the remedy.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import existing_columns, ident
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, _cmd in existing_columns(step, ctx, "AT_DropNotNull"):
        if f"DROP NOT NULL {table}.{column}" in step.effects.no_ops:
            continue  # already nullable (the catalog, or the migration says so)
        col = ident(column)
        yield Hit(
            message=f"drops NOT NULL from {table}.{col} (ACCESS EXCLUSIVE on {table}, blocks "
            "reads and writes, briefly): readers still deployed that assume a value break on "
            "the first NULL written",
            help="deploy readers that handle NULL first, then drop NOT NULL with an ignore "
            "comment saying so",
            severity=Severity.WARNING,
        )


RULE = Rule(
    code="PW211",
    name="not-null-dropped",
    summary="DROP NOT NULL breaks readers that assume the column always has a value",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_DropNotNull"}),
)
