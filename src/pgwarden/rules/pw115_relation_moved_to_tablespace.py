"""Moves a table, index or materialized view to another tablespace under ACCESS EXCLUSIVE.

## What it does
Flags `ALTER TABLE | INDEX | MATERIALIZED VIEW ... SET TABLESPACE` on a
relation that existed before the migration.

## Why is this bad?
The server copies every block of the relation's files into the new
tablespace while holding ACCESS EXCLUSIVE on it: no query can read or write
the table (for an index: no query can even be planned on its table) until the
copy is done, and the copy grows with the relation. A table's indexes are not
moved with it; each needs its own statement and its own outage.

## Example
```sql
ALTER TABLE invoices SET TABLESPACE fast_ssd;
```

## Use instead
For an index, build a copy in the new tablespace without blocking writes,
then swap:
```sql
CREATE INDEX CONCURRENTLY invoices_created_at_idx_new ON invoices (created_at)
    TABLESPACE fast_ssd;
DROP INDEX CONCURRENTLY invoices_created_at_idx;
ALTER INDEX invoices_created_at_idx_new RENAME TO invoices_created_at_idx;
```
For a table, use an online tool that copies while writes go on (pg_repack
`--tablespace`), or set `default_tablespace` so that new tables land there.
A partitioned table has no storage: `SET TABLESPACE` on it only changes where
new partitions go and is not flagged.

## Fix safety
No mechanical fix: the concurrent swap of an index needs its definition, and a
table needs an external tool.

## References
https://www.postgresql.org/docs/current/sql-altertable.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.context import BYTES_PER_S
from pgwarden.analysis.effects import LockMode
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, how_long, ident
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock


def _table_of_index(ctx: LintContext, index: str) -> str:
    """The index's table when the snapshot's catalog knows it (sizes are per table)."""
    catalog = ctx.snapshot.catalog if ctx.snapshot is not None else None
    rel = catalog.get(index) if catalog is not None else None
    return rel.table if rel is not None and rel.table else index


def _index_copy_s(ctx: LintContext, index: str) -> float | None:
    stats = ctx.snapshot.stats.indexes.get(index) if ctx.snapshot is not None else None
    return None if stats is None else stats.bytes / BYTES_PER_S["copy"]


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    target = next((c.get("name") for sub, c in alter_cmds(step) if sub == "AT_SetTableSpace"), None)
    if target is None or not step.effects.rewrites:
        return
    strongest = step.effects.strongest()
    kinds = {lk.relation: lk.relkind for lk in step.effects.locks}
    for rel in step.effects.rewrites:
        what = kinds.get(rel, "table")
        table = _table_of_index(ctx, rel) if what == "index" else rel
        est = _index_copy_s(ctx, rel) if what == "index" else ctx.duration(table, kind="copy")
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        mode = strongest.get(rel, LockMode.ACCESS_EXCLUSIVE)
        takes = how_long(est, unknown=f"duration grows with the {what}")
        yield Hit(
            message=f"copies every block of {what} {rel} to tablespace {ident(str(target))} "
            f"({takes}) while holding {describe_lock(mode, rel)}; {table}: {judged.size}",
            help="for an index: CREATE INDEX CONCURRENTLY ... TABLESPACE, then DROP INDEX "
            "CONCURRENTLY the old one; for a table: an online copy (pg_repack --tablespace)",
            severity=judged.severity,
        )


RULE = Rule(
    code="PW115",
    name="relation-moved-to-tablespace",
    summary="SET TABLESPACE copies the relation while reads and writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_SetTableSpace"}),
)
