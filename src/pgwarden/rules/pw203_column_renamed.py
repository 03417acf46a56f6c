"""Renames a column that running code uses by its old name.

## What it does
Flags `ALTER TABLE ... RENAME COLUMN a TO b` (also on views and materialized
views) on a relation that existed before the migration, unless the column
was added earlier in the same plan.

Severity: warning. The lock is brief whatever the table's size; whether the
change breaks anything depends on the code still deployed, which only you
know. `--fail-on warning` (or `fail_on = "warning"`) makes it fail CI.

## Why is this bad?
Every query that names the old column fails from the moment the rename
commits until the new code is deployed everywhere, and the old code keeps
running during a rolling deploy. The rename itself is quick but takes ACCESS
EXCLUSIVE, so it queues traffic while it waits.

## Example
```sql
ALTER TABLE invoices RENAME COLUMN amount_cents TO total_cents;
```

## Use instead
```sql
ALTER TABLE invoices ADD COLUMN total_cents bigint;
-- write both columns from the application, backfill total_cents in batches
-- (pgwarden backfill), switch reads to total_cents, then stop writing and
-- drop amount_cents in a later release.
```
Expand and contract: add the new column, write both, backfill, move reads,
and drop the old one later. Alembic: `op.add_column` now, `op.drop_column`
later. Django: `AddField` plus a data migration, `RemoveField` in a later
release (not `RenameField`).

## Fix safety
No mechanical fix: the safe path spans several releases.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-RENAME
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import column_added_earlier, ident, qualified, regclass, size_words
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("RenameStmt")
    if body is None or body.get("renameType") != "OBJECT_COLUMN":
        return
    table = regclass(body.get("relation"))
    old, new = str(body.get("subname")), str(body.get("newname"))
    if qualified(table) in ctx.created:
        return
    if column_added_earlier(ctx, step, table, old):
        return
    was, now = ident(old), ident(new)
    yield Hit(
        message=f"renames {table}.{was} to {now} (ACCESS EXCLUSIVE on {table}, blocks reads and "
        f"writes, briefly); every query still naming {was} fails until all code is redeployed, "
        f"old code during a rolling deploy included{size_words(ctx, table)}",
        help="add the new column, write both, backfill, move reads, and drop the old column in "
        "a later release",
        severity=Severity.WARNING,
    )


RULE = Rule(
    code="PW203",
    name="column-renamed",
    summary="RENAME COLUMN breaks every running query that uses the old name",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"RenameStmt"}),
)
