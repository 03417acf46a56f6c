"""Adds a NOT NULL column without a default to a table that already has rows.

## What it does
Flags `ALTER TABLE ... ADD COLUMN c type NOT NULL` (or `PRIMARY KEY`) with no
`DEFAULT`, identity or generated expression, on a table that existed before
the migration. Not flagged when the stats snapshot says the table is empty, nor
after the same file emptied it (`TRUNCATE`, `DELETE` without `WHERE`).

## Why is this bad?
Existing rows would get NULL in the new column, so the server rejects the
statement on any non-empty table (`column "c" ... contains null values`).
It takes ACCESS EXCLUSIVE first, so the failing attempt also blocks the
table while it waits, and the deploy stops half-way.

## Example
```sql
ALTER TABLE invoices ADD COLUMN currency text NOT NULL;
```

## Use instead
```sql
ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';
```
A constant (or stable, like `now()`) default costs nothing since PostgreSQL
11: no rewrite, existing rows read the default. If there is no sensible
default, add the column nullable, backfill it in batches, then make it NOT
NULL through a validated CHECK (PW103). Alembic: `op.add_column(...,
server_default=...)`. Django: `AddField` with `db_default` (Django 5+), or
nullable first.

## Fix safety
No mechanical fix: the default value is a product decision.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-COLUMN
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, ident, regclass, table_of, type_of
from pgwarden.rules.base import Hit, LintContext, Rule

_FILLED = {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}
_SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    table = table_of(step)
    if table is None:
        return
    for subtype, cmd in alter_cmds(step):
        col = cmd.get("def", {}).get("ColumnDef", {}) if subtype == "AT_AddColumn" else {}
        kinds = {c.get("Constraint", {}).get("contype") for c in col.get("constraints") or ()}
        if not kinds & {"CONSTR_NOTNULL", "CONSTR_PRIMARY"} or kinds & _FILLED:
            continue
        if type_of(col.get("typeName", {}))[0] in _SERIAL:
            continue
        judged = ctx.judge(table)
        stats = ctx.snapshot.table(table) if ctx.snapshot is not None else None
        if judged.severity is None or (stats is not None and stats.rows == 0):
            continue
        if _emptied_before(step, ctx, table):
            continue
        name = ident(str(col.get("colname")))
        yield Hit(
            message=f"adds NOT NULL column {name} with no default: if {table} has "
            "any rows, the server rejects it (they would be NULL) after waiting for ACCESS "
            f"EXCLUSIVE, and the deploy fails; {table}: {judged.size}",
            help="give it a constant DEFAULT (free since PostgreSQL 11), or add it nullable, "
            "backfill, then SET NOT NULL through a validated CHECK",
            severity=Severity.WARNING,
        )


def _emptied_before(step: Step, ctx: LintContext, table: str) -> bool:
    """Whether an earlier statement of the step's file emptied `table`: TRUNCATE, or
    DELETE without WHERE (what the migration does to add a column to a table it refills)."""
    for earlier in reversed(ctx.plan.steps[: step.index]):
        if earlier.location.path != step.location.path:
            return False
        truncate = earlier.tree.get("TruncateStmt")
        if truncate is not None and table in (
            regclass(r.get("RangeVar")) for r in truncate.get("relations") or ()
        ):
            return True
        delete = earlier.tree.get("DeleteStmt")
        if (
            delete is not None
            and not delete.get("whereClause")
            and regclass(delete.get("relation")) == table
        ):
            return True
    return False


RULE = Rule(
    code="PW141",
    name="not-null-column-added-without-default",
    summary="ADD COLUMN ... NOT NULL without a default fails on a table that has rows",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn"}),
)
