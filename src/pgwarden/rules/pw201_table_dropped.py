"""Drops a table that running code may still use, with all its rows.

## What it does
Flags `DROP TABLE` of a table that existed before the migration (a table
created earlier in the same plan is not flagged). An error, except when the
stats snapshot shows the table empty (0 rows) with no reads or writes while it
was sampled: then a warning, because stale stats can hide rows written since.
When the same file copied the table's rows into another one first (`INSERT
INTO t_new SELECT ... FROM t`, a table rebuilt under a new name), the finding
says what that copy can leave out instead of calling the data lost.

## Why is this bad?
The rows are gone the moment the transaction commits; getting them back means
restoring a backup, and the backup must have been tested to be trusted.
Application code still deployed (including the old version during a rolling
deploy) fails on every query that touches the table. The drop also takes
ACCESS EXCLUSIVE on the table and on every table it has a foreign key to,
so it queues traffic while it waits. Size does not matter here: this is an
error on a two-row table too.

## Example
```sql
DROP TABLE legacy_invoices;
```

## Use instead
```sql
-- release 1: the application stops reading and writing legacy_invoices.
-- release 2, after a verified backup (pgwarden backup create, then backup verify):
-- pgwarden: ignore PW204 unused since release 1
ALTER TABLE legacy_invoices RENAME TO legacy_invoices_to_drop;
-- release 3, when nothing complained:
-- pgwarden: ignore PW201 renamed aside in release 2, backup verified
DROP TABLE legacy_invoices_to_drop;
```
Stop using the table first, back it up and verify the backup, then drop it in
a later release with an ignore comment that says why it is safe. Alembic:
`op.drop_table` in a revision after the code change. Django: delete the model
in one release and let the `DeleteModel` migration run in the next one.

## Fix safety
No fix: dropping data is a decision, not a rewrite.

## References
https://www.postgresql.org/docs/current/sql-droptable.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import (
    dotted,
    known_missing,
    qualified,
    regclass,
    size_words,
    strings,
)
from pgwarden.rules.base import Hit, LintContext, Rule

if TYPE_CHECKING:  # a snapshot's types: pg.stats is loaded with a snapshot
    from pgwarden.pg.stats import TableStats


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("DropStmt")
    if body is None or body.get("removeType") != "OBJECT_TABLE":
        return
    for obj in body.get("objects") or ():
        table = dotted(obj.get("List", {}).get("items"))
        if not strings(obj.get("List", {}).get("items")) or qualified(table) in ctx.created:
            continue
        if body.get("missing_ok") and known_missing(ctx, table):
            continue  # DROP TABLE IF EXISTS of a table that is not there
        stats = ctx.snapshot.table(table) if ctx.snapshot is not None else None
        if stats is not None and _empty_and_unused(stats):
            yield Hit(
                message=f"drops table {table}, which the stats snapshot shows empty and unused "
                f"(0 rows, no reads or writes while sampled); if the stats are stale, rows written "
                f"since are lost with it and code still using {table} fails from this moment",
                help="check the table is still empty (SELECT 1 FROM it LIMIT 1) and unused on the "
                "database itself before dropping it; a fresh `pgwarden stats dump` says so too",
                severity=Severity.WARNING,
            )
            continue
        copy = _copied_before(step, ctx, table)
        if copy is not None:
            target, line = copy
            yield Hit(
                message=f"drops table {table} (ACCESS EXCLUSIVE on {table}, blocks reads and "
                f"writes) after copying its rows into {target} at line {line}: what that copy "
                f"left out goes with it (columns not selected, rows filtered out, rows written "
                f"to {table} after the copy unless a lock kept writers out)"
                f"{size_words(ctx, table)}",
                help=f"lock {table} against writes (LOCK TABLE {table} IN SHARE MODE) in the "
                "copy's transaction, compare the row counts, and keep a verified backup; then "
                "drop it with an ignore comment saying so (-- pgwarden: ignore PW201 <why>)",
                severity=Severity.ERROR,
            )
            continue
        yield Hit(
            message=f"drops table {table} and every row in it (ACCESS EXCLUSIVE on {table}, "
            f"blocks reads and writes); code still using {table} fails from this moment and the "
            f"data comes back only from a backup{size_words(ctx, table)}",
            help="stop using the table in a release before, take and verify a backup, then drop "
            "it with an ignore comment saying so (-- pgwarden: ignore PW201 <why it is safe>)",
            severity=Severity.ERROR,
        )


def _copied_before(step: Step, ctx: LintContext, table: str) -> tuple[str, int] | None:
    """(target, line) of an INSERT ... SELECT earlier in the step's file that read `table`
    (a table rebuilt under a new name before the old one is dropped), else None."""
    for earlier in reversed(ctx.plan.steps[: step.index]):
        if earlier.location.path != step.location.path:
            break
        insert = earlier.tree.get("InsertStmt")
        if insert is None:
            continue
        target = regclass(insert.get("relation"))
        if target != table and any(
            lock.relation == table and lock.mode is LockMode.ACCESS_SHARE
            for lock in earlier.effects.locks
        ):
            return target, earlier.location.line
    return None


def _empty_and_unused(stats: TableStats) -> bool:
    """0 rows, and read and write rates sampled and zero (unknown rates are not zero)."""
    return stats.rows == 0 and stats.writes_per_s == 0 and stats.reads_per_s == 0


RULE = Rule(
    code="PW201",
    name="table-dropped",
    summary="DROP TABLE loses the data and breaks code that still uses the table",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropStmt"}),
)
