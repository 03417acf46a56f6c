"""Rewrites tables with VACUUM FULL or CLUSTER, blocking reads and writes.

## What it does
Flags `VACUUM FULL` (also `VACUUM (FULL)`) and `CLUSTER`, with or without a
table list, on tables that existed before the migration.

## Why is this bad?
Both copy the table into a new file and rebuild all its indexes while holding
ACCESS EXCLUSIVE: no reads and no writes until the copy is done, which on a
large table takes minutes to hours. Without a table list they do this to
every table in the database (VACUUM FULL) or every table clustered before
(CLUSTER), one after the other. They also need room for a second copy.

## Example
```sql
VACUUM FULL invoices;
```

## Use instead
```sql
VACUUM (ANALYZE) invoices;
```
Plain `VACUUM` makes dead space reusable without blocking reads or writes. To
give space back to the operating system or restore physical order online,
use `pg_repack` or `pg_squeeze` (or `REPACK ... CONCURRENTLY` on PostgreSQL
19 and later) from an operations job, not from a schema migration. Alembic
and Django: do not run these from migrations.

## Fix safety
No mechanical fix: plain VACUUM does not return space to the operating system.

## References
https://www.postgresql.org/docs/current/sql-vacuum.html
https://www.postgresql.org/docs/current/sql-cluster.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import how_long, judged_rewrites, option_on, regclass
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_HELP = (
    "run plain VACUUM (no lock on reads or writes); to shrink or reorder a busy table use "
    "pg_repack / pg_squeeze from an operations job"
)


def _targets(step: Step) -> tuple[str, list[str]] | None:
    """(command, tables named) of a VACUUM FULL or CLUSTER, else None."""
    vacuum = step.tree.get("VacuumStmt")
    if vacuum is not None:
        if not vacuum.get("is_vacuumcmd") or not option_on(vacuum.get("options"), "full"):
            return None
        rels = [regclass(r["VacuumRelation"].get("relation")) for r in vacuum.get("rels") or ()]
        return "VACUUM FULL", rels
    cluster = step.tree.get("ClusterStmt")
    if cluster is not None:
        rel = cluster.get("relation")
        return "CLUSTER", [regclass(rel)] if rel else []
    return None


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    found = _targets(step)
    if found is None:
        return
    command, named = found
    if not named:
        every = (
            "every table in the database"
            if command == "VACUUM FULL"
            else "every table clustered before"
        )
        yield Hit(
            message=f"{command} without a table rewrites {every}, one at a time, each holding "
            f"ACCESS EXCLUSIVE (blocks reads and writes) for its whole copy",
            help=_HELP,
            severity=Severity.ERROR,
        )
        return
    for table, est, size, severity, mode in judged_rewrites(step, ctx, named):
        yield Hit(
            message=f"{command} rewrites all of {table} and rebuilds its indexes "
            f"({how_long(est)}) while holding {describe_lock(mode, table)}; "
            f"{table}: {size}",
            help=_HELP,
            severity=severity,
        )


RULE = Rule(
    code="PW110",
    name="table-rewritten-by-vacuum-full-or-cluster",
    summary="VACUUM FULL and CLUSTER copy the whole table while reads and writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"VacuumStmt", "ClusterStmt"}),
)
