"""Drops an index that queries were using when the stats were taken.

## What it does
Flags `DROP INDEX [CONCURRENTLY]` of an index that the stats snapshot shows
in use (`pg_stat_user_indexes.idx_scan` above zero, and its scan rate when the
snapshot sampled one). Without a snapshot it cannot know and stays quiet.

## Why is this bad?
The drop itself may be quick, but every query that used the index now plans
without it: point lookups become sequential scans of the whole table, CPU and
I/O climb, and a busy API slows down or falls over minutes after a "harmless"
migration. This is the Datacake pattern: a change that degrades the database
until the backlog never recovers.

## Example
```sql
-- the stats snapshot shows this index scanned 180 times a second
DROP INDEX CONCURRENTLY invoices_payment_account_id_idx;
```

## Use instead
```sql
-- First check what uses it (pg_stat_statements, EXPLAIN of the hot queries);
-- drop only an index whose idx_scan stays at zero over a full business cycle.
DROP INDEX CONCURRENTLY invoices_unused_idx;
```
Alembic: `op.drop_index(..., postgresql_concurrently=True)` once the index is
proven unused. Django: `RemoveIndexConcurrently` in a migration with
`atomic = False`, after the same check.

## Fix safety
No automatic fix: whether the queries still need the index is a decision.

## References
https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-INDEXES-VIEW
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import object_name, qualified
from pgwarden.rules.base import Hit, LintContext, Rule

# At or above this many scans per second (when sampled) the index is hot.
HOT_SCANS_PER_S = 1.0


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("DropStmt")
    if body is None or body.get("removeType") != "OBJECT_INDEX" or ctx.snapshot is None:
        return
    indexes = ctx.snapshot.stats.indexes
    for obj in body.get("objects") or ():
        name = object_name(obj)
        stats = indexes.get(name) or indexes.get(qualified(name)) or indexes.get(f"public.{name}")
        if stats is None or stats.idx_scan == 0 or qualified(stats.table) in ctx.created:
            continue
        rate = stats.scans_per_s
        hot = rate is not None and rate >= HOT_SCANS_PER_S
        now = f", {rate:.1f} scans/s when sampled" if rate is not None else ""
        yield Hit(
            message=f"drops index {name} on {stats.table}, which queries used {stats.idx_scan:,} "
            f"times since the statistics were reset{now}: those queries will scan "
            f"{stats.table} instead",
            help="find the queries that use it (pg_stat_statements, EXPLAIN) before dropping it; "
            "keep it, or replace it first",
            severity=Severity.ERROR if hot else Severity.WARNING,
        )


RULE = Rule(
    code="PW212",
    name="index-dropped-while-used",
    summary="DROP INDEX of an index the stats snapshot shows in use",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropStmt"}),
)
