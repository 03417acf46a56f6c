"""Attaches a partition that is scanned under ACCESS EXCLUSIVE to prove its bound.

## What it does
Flags `ALTER TABLE parent ATTACH PARTITION child FOR VALUES ...` when the
server must scan the partition to check that every row fits the bound: no
valid CHECK constraint on the partition implies it (with a catalog from
`--database-url` or a stats snapshot pgwarden knows; without one it assumes so).

Also flags `CREATE TABLE ... PARTITION OF` and `ATTACH PARTITION` on a parent
with a DEFAULT partition (known from the catalog): the server reads the whole
DEFAULT partition, under ACCESS EXCLUSIVE, to check that none of its rows
belong to the new partition.

## Why is this bad?
The parent only gets SHARE UPDATE EXCLUSIVE, but the partition being attached
is locked ACCESS EXCLUSIVE for the whole scan: nothing reads or writes it
until every row is checked. Attaching a table that was loaded beforehand (the
usual way to add a big partition) blocks it for as long as a full scan takes.

## Example
```sql
ALTER TABLE invoices_by_month ATTACH PARTITION invoices_2026_11
    FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
```

## Use instead
```sql
ALTER TABLE invoices_2026_11 ADD CONSTRAINT invoices_2026_11_bound
    CHECK (created_at >= '2026-11-01' AND created_at < '2026-12-01') NOT VALID;
ALTER TABLE invoices_2026_11 VALIDATE CONSTRAINT invoices_2026_11_bound;
ALTER TABLE invoices_by_month ATTACH PARTITION invoices_2026_11
    FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
ALTER TABLE invoices_2026_11 DROP CONSTRAINT invoices_2026_11_bound;
```
The validated CHECK proves the bound, so the attach skips the scan
(VALIDATE takes SHARE UPDATE EXCLUSIVE: reads and writes go on). Alembic and
Django: the same statements through `op.execute` / `RunSQL`.

## Fix safety
No automatic fix: the CHECK must restate the bound in the partition key's terms.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-ATTACH-PARTITION
https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from pgwarden.analysis.effects import LockMode
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, how_long, regclass, table_of
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

CODE = "PW114"


def _validated(ctx: LintContext) -> dict[str, dict[str, bool]]:
    """table -> {CHECK constraint added earlier in the plan: validated yet}."""
    return cast("dict[str, dict[str, bool]]", ctx.state.setdefault(CODE, {}))


def observe(step: Step, ctx: LintContext) -> None:
    """Track CHECK constraints added and validated earlier in the plan, per table."""
    table = table_of(step)
    if table is None:
        return
    checks = _validated(ctx).setdefault(table, {})
    for subtype, cmd in alter_cmds(step):
        con = cmd.get("def", {}).get("Constraint", {})
        if subtype == "AT_AddConstraint" and con.get("contype") == "CONSTR_CHECK":
            checks[str(con.get("conname"))] = not con.get("skip_validation")
        elif subtype == "AT_ValidateConstraint" and str(cmd.get("name")) in checks:
            checks[str(cmd.get("name"))] = True
        elif subtype == "AT_DropConstraint":
            checks.pop(str(cmd.get("name")), None)


def _default_partition(step: Step, ctx: LintContext, scanned: str, parent: str) -> Iterator[Hit]:
    """A new partition makes the server re-check the DEFAULT partition for rows it now owns."""
    est = ctx.duration(scanned, rewrite=False)
    judged = ctx.judge(scanned, lock_s=est)
    if judged.severity is None:
        return
    mode = step.effects.strongest().get(scanned, LockMode.ACCESS_EXCLUSIVE)
    yield Hit(
        message=f"adds a partition to {parent}, so its DEFAULT partition {scanned} is read in "
        f"full for rows that belong to the new one ({how_long(est)}) while holding "
        f"{describe_lock(mode, scanned)} (and ACCESS EXCLUSIVE on {parent}); "
        f"{scanned}: {judged.size}",
        help="add a CHECK to the DEFAULT partition that excludes the new range (NOT VALID, then "
        "VALIDATE) so the scan is skipped, or move its matching rows out first",
        severity=judged.severity,
    )


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    create = step.tree.get("CreateStmt")
    if create is not None:
        parents = create.get("inhRelations") or ()
        if create.get("partbound") is not None and parents:
            parent = regclass(parents[0].get("RangeVar"))
            for scanned in step.effects.scans:
                yield from _default_partition(step, ctx, scanned, parent)
        return
    own = step.effects.strongest()
    for subtype, cmd in alter_cmds(step):
        if subtype != "AT_AttachPartition":
            continue
        part = regclass(cmd.get("def", {}).get("PartitionCmd", {}).get("name"))
        for other in step.effects.scans:
            if other != part:
                yield from _default_partition(step, ctx, other, str(table_of(step)))
        if part not in step.effects.scans or any(_validated(ctx).get(part, {}).values()):
            continue  # a valid CHECK (from the catalog or earlier in the plan) proves the bound
        est = ctx.duration(part, rewrite=False)
        judged = ctx.judge(part, lock_s=est)
        if judged.severity is None:
            continue
        mode = own.get(part, LockMode.ACCESS_EXCLUSIVE)
        yield Hit(
            message=f"attaches {part} after scanning all of it to check the partition bound "
            f"({how_long(est)}) while holding {describe_lock(mode, part)}; {part}: {judged.size}",
            help="first add a CHECK constraint that restates the bound, NOT VALID, and VALIDATE "
            "it; the attach then skips the scan",
            severity=judged.severity,
        )


RULE = Rule(
    code=CODE,
    name="partition-attached-with-scan",
    summary="ATTACH PARTITION scans the partition under ACCESS EXCLUSIVE to check its bound",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt", "CreateStmt"}),
    subtypes=frozenset({"AT_AttachPartition"}),
    observe=observe,
    observe_kinds=frozenset({"AlterTableStmt"}),  # table_of(): an ALTER TABLE's table
)
