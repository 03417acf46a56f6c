"""Adds an exclusion constraint, whose index is built while reads and writes wait.

## What it does
Flags `ALTER TABLE ... ADD [CONSTRAINT c] EXCLUDE USING ... (...)` on a table
that existed before the migration.

## Why is this bad?
An exclusion constraint is enforced by an index that ALTER TABLE builds while
holding ACCESS EXCLUSIVE on the table: reads and writes wait until every row
has been read, indexed and checked against the others. Unlike UNIQUE there
is no `USING INDEX` form and no `NOT VALID`, so PostgreSQL offers no
non-blocking way to add one to a busy table.

## Example
```sql
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (room_id WITH =, during WITH &&);
```

## Use instead
```sql
CREATE TABLE bookings_new (LIKE bookings INCLUDING ALL);
ALTER TABLE bookings_new ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (room_id WITH =, during WITH &&);
-- copy rows in batches (pgwarden backfill), keep them in sync with a trigger,
-- then swap the names in one short transaction.
```
Declare the constraint while the table is new (in its `CREATE TABLE`), or
build a new table with it and move the data over. If the table is small,
add it with a short `lock_timeout` and say why in an ignore comment. Alembic
and Django have no special support: use `op.execute` / `RunSQL`.

## Fix safety
No mechanical fix.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, how_long, ident, table_of
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    table = table_of(step)
    if table is None:
        return
    for subtype, cmd in alter_cmds(step):
        con = cmd.get("def", {}).get("Constraint", {}) if subtype == "AT_AddConstraint" else {}
        if con.get("contype") != "CONSTR_EXCLUSION":
            continue
        est = ctx.duration(table, kind="index")
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        mode = step.effects.strongest().get(table, LockMode.ACCESS_EXCLUSIVE)
        name = ident(str(con["conname"])) if con.get("conname") else "(unnamed)"
        yield Hit(
            message=f"builds the index of exclusion constraint {name} "
            f"over all of {table} ({how_long(est)}) while holding {describe_lock(mode, table)}; "
            f"{table}: {judged.size}",
            help="there is no concurrent form: declare it when the table is created, or build a "
            "new table with it and move the rows over in batches",
            severity=judged.severity,
        )


RULE = Rule(
    code="PW107",
    name="exclusion-constraint-builds-index-under-lock",
    summary="ADD EXCLUDE builds its index while reads and writes wait; there is no concurrent form",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AddConstraint"}),
)
