"""Detaches a partition without CONCURRENTLY, locking the whole partitioned table.

## What it does
Flags `ALTER TABLE parent DETACH PARTITION child` without `CONCURRENTLY` on a
partitioned table that existed before the migration.

## Why is this bad?
A plain detach takes ACCESS EXCLUSIVE on the parent and on the partition.
The change itself is quick, but while it waits for the lock (behind any
long query on any partition) every new query on the parent queues behind it,
reads included. On a busy partitioned table that wait is an outage.

## Example
```sql
ALTER TABLE events DETACH PARTITION events_2023;
```

## Use instead
```sql
ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;
```
`CONCURRENTLY` (PostgreSQL 14+) takes only SHARE UPDATE EXCLUSIVE on the
parent, so reads and writes go on. It cannot run inside a transaction block
or when the table has a DEFAULT partition; if it is interrupted, finish it
with `DETACH PARTITION ... FINALIZE`. Alembic: `op.execute(...)` inside
`autocommit_block()`. Django: `RunSQL` in a migration with `atomic = False`.

## Fix safety
Safe: the result is the same. The detach waits for running queries on the
parent to finish, in two transactions. The fixed file first finishes a
detach an earlier, interrupted run left pending (`DETACH PARTITION ...
FINALIZE`, in a block that does nothing otherwise). A detach that completed
cannot run again ("is not a partition of"), and no SQL can skip it (it cannot
run inside a block): the file's header says to retry with `pgwarden apply`,
which finds the partition already detached and records the step as done (or
finishes a pending detach itself). With psql, run the file again from the
statement after the detach.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DETACH-PARTITION
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, regclass, table_of
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    parent = table_of(step)
    if parent is None:
        return
    for subtype, cmd in alter_cmds(step):
        pcmd = cmd.get("def", {}).get("PartitionCmd", {})
        if subtype != "AT_DetachPartition" or pcmd.get("concurrent"):
            continue
        judged = ctx.judge(parent)
        if judged.severity is None:
            continue
        part = regclass(pcmd.get("name"))
        mode = step.effects.strongest().get(parent, LockMode.ACCESS_EXCLUSIVE)
        # The detach itself is brief: the harm is the queue that forms while it waits.
        severity = Severity.NOTE if judged.severity is Severity.NOTE else Severity.WARNING
        yield Hit(
            message=f"detaches {part} holding {describe_lock(mode, parent)} and on {part}; "
            f"while it waits for the lock, every query on {parent} queues behind it; "
            f"{parent}: {judged.size}",
            help="use DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+, outside a transaction "
            "block, no DEFAULT partition)",
            severity=severity,
            fix=Fix(
                (FixStatement(f"{step.sql.rstrip().rstrip(';')} CONCURRENTLY;", Placement.BEFORE),)
            )
            if len(step.body.get("cmds", ())) == 1
            else None,
        )


RULE = Rule(
    code="PW113",
    name="partition-detached-under-lock",
    summary="DETACH PARTITION without CONCURRENTLY locks the parent against reads and writes",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_DetachPartition"}),
)
