"""Adds a CHECK constraint that is validated while reads and writes wait.

## What it does
Flags `ALTER TABLE ... ADD [CONSTRAINT c] CHECK (...)` without `NOT VALID` on
a table that existed before the migration, and a new column declared with an
inline `CHECK` (the server verifies it with the same full scan, even though
the new column is all NULL or all default). Also flags `VALIDATE CONSTRAINT`
(of any constraint) in an `ALTER TABLE` whose other sub-commands take a lock
that blocks writes (`VALIDATE CONSTRAINT c, ADD COLUMN z int`): the server
takes the strongest sub-command's lock for the whole statement, so the
validation scan runs under ACCESS EXCLUSIVE instead of SHARE UPDATE EXCLUSIVE.

## Why is this bad?
Adding a CHECK takes ACCESS EXCLUSIVE on the table and then reads every row
to verify it. Nobody can read or write the table until the scan is done, and
the scan grows with the table. With `NOT VALID` the lock is held only for a
catalog update; `VALIDATE CONSTRAINT` later scans under SHARE UPDATE
EXCLUSIVE, which lets reads and writes go on.

## Example
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive CHECK (amount_cents > 0);
```

## Use instead
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive
    CHECK (amount_cents > 0) NOT VALID;
-- then, in a separate transaction:
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
```
Keep `VALIDATE CONSTRAINT` in an `ALTER TABLE` of its own, never combined
with other sub-commands.
New rows are checked from the first statement on. For a new column, add the
column first and the CHECK as above. Alembic:
`op.create_check_constraint(..., postgresql_not_valid=True)`, then
`op.execute("ALTER TABLE ... VALIDATE CONSTRAINT ...")` in the next revision.
Django: `RunSQL` for both statements (wrapped in `SeparateDatabaseAndState` to
record the `CheckConstraint`), the validation in its own migration.

## Fix safety
Safe: the constraint is the same once validated. Until then, existing rows
are not known to satisfy it (the planner does not rely on it).

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import Constraint
from pgwarden.findings import Fix
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, how_long, ident, table_of
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock
from pgwarden.rules.pw102_foreign_key_validated_under_lock import validate_later


def _checks(step: Step) -> Iterator[tuple[Constraint, str | None]]:
    """(constraint, new column it is declared on) of each CHECK validated right away."""
    for subtype, cmd in alter_cmds(step):
        if subtype == "AT_AddConstraint":
            con = cmd.get("def", {}).get("Constraint", {})
            if con.get("contype") == "CONSTR_CHECK" and not con.get("skip_validation"):
                yield con, None
        elif subtype == "AT_AddColumn":
            col = cmd.get("def", {}).get("ColumnDef", {})
            for c in col.get("constraints") or ():
                con = c.get("Constraint", {})
                if con.get("contype") == "CONSTR_CHECK" and not con.get("skip_validation"):
                    yield con, str(col.get("colname"))


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    table = table_of(step)
    if table is None or not step.effects.scans:
        return
    yield from _validated_with_others(step, ctx, table)
    for con, column in _checks(step):
        est = ctx.duration(table, rewrite=False)
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        mode = step.effects.strongest().get(table, LockMode.ACCESS_EXCLUSIVE)
        name = ident(str(con["conname"])) if con.get("conname") else "(unnamed)"
        on_column = f" declared on the new column {ident(column)}" if column else ""
        yield Hit(
            message=f"validates CHECK {name}{on_column} by scanning all of {table} "
            f"({how_long(est)}) while holding {describe_lock(mode, table)}; "
            f"{table}: {judged.size}",
            help="add the CHECK with NOT VALID, then VALIDATE CONSTRAINT in a separate "
            "transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
            severity=judged.severity,
            fix=None if column else fix(step, table, con),
        )


def _validated_with_others(step: Step, ctx: LintContext, table: str) -> Iterator[Hit]:
    """VALIDATE CONSTRAINT sharing an ALTER TABLE with sub-commands that block writes."""
    names = [str(c.get("name")) for sub, c in alter_cmds(step) if sub == "AT_ValidateConstraint"]
    mode = step.effects.strongest().get(table)
    if not names or len(names) == len(alter_cmds(step)) or mode is None:
        return
    if not mode.blocks_writes:
        return
    est = ctx.duration(table, rewrite=False)
    judged = ctx.judge(table, lock_s=est)
    if judged.severity is None:
        return
    others = sorted({sub[3:] for sub, _ in alter_cmds(step) if sub != "AT_ValidateConstraint"})
    validated = ", ".join(map(ident, names))
    yield Hit(
        message=f"validates {validated} by scanning all of {table} ({how_long(est)}) "
        f"while holding {describe_lock(mode, table)}, the lock of the other sub-commands "
        f"({', '.join(others)}) in the same ALTER TABLE; {table}: {judged.size}",
        help="run VALIDATE CONSTRAINT as an ALTER TABLE of its own, in a separate transaction "
        "(SHARE UPDATE EXCLUSIVE: reads and writes go on)",
        severity=judged.severity,
    )


def fix(step: Step, table: str, con: Constraint) -> Fix | None:
    """NOT VALID now, VALIDATE later; only for a single named ADD CONSTRAINT."""
    name = con.get("conname")
    if not name or len(step.body.get("cmds", ())) != 1:
        return None
    return validate_later(step.sql.rstrip().rstrip(";"), table, ident(str(name)))


RULE = Rule(
    code="PW106",
    name="check-constraint-validated-under-lock",
    summary="ADD CHECK without NOT VALID scans the table while reads and writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AddConstraint", "AT_AddColumn", "AT_ValidateConstraint"}),
)
