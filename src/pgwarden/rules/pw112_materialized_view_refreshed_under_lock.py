"""Refreshes a materialized view without CONCURRENTLY, blocking every read of it.

## What it does
Flags `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` on a materialized
view that existed before the migration, including `WITH NO DATA`.

## Why is this bad?
A plain refresh holds ACCESS EXCLUSIVE on the materialized view while its
query runs and the result is written: every SELECT of the view waits until
the refresh ends, for as long as the query takes. `WITH NO DATA` is quick but
leaves the view unreadable: queries fail until the next refresh.

## Example
```sql
REFRESH MATERIALIZED VIEW monthly_revenue;
```

## Use instead
```sql
REFRESH MATERIALIZED VIEW CONCURRENTLY monthly_revenue;
```
`CONCURRENTLY` computes the new contents next to the old ones and applies the
difference under EXCLUSIVE, which lets reads go on. It needs a unique index
on the view (create it once, concurrently) and cannot be combined with `WITH
NO DATA`. Alembic: `op.execute(...)`. Django: `RunSQL(...)`.

## Fix safety
Safe when the view has a unique index over all its rows; otherwise the
concurrent refresh fails with an error asking for one, blocking nothing.
`--fix` and `apply --rewrite` apply it only when the catalog (`--stats` or
`--database-url`) shows such an index on plain columns; otherwise the fix is
shown as advice.

## References
https://www.postgresql.org/docs/current/sql-refreshmaterializedview.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import how_long, regclass
from pgwarden.rules.base import LONG_LOCK_S, Hit, LintContext, Rule, describe_lock

_KEYWORD = re.compile(r"^(\s*REFRESH\s+MATERIALIZED\s+VIEW)\b", re.I)


def _estimate(step: Step, ctx: LintContext, view: str) -> float | None:
    """Seconds the refresh holds its lock: reading the tables the view's query reads
    (known from the catalog) plus writing the view."""
    parts = [ctx.duration(view, rewrite=True)]
    parts += [ctx.duration(src, kind="scan") for src in step.effects.scans if src != view]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("RefreshMatViewStmt")
    if body is None or body.get("concurrent"):
        return
    view = regclass(body.get("relation"))
    est = _estimate(step, ctx, view)
    judged = ctx.judge(view, lock_s=est)
    severity = judged.severity
    if severity is None:
        return
    if severity is Severity.NOTE and est is not None and est >= LONG_LOCK_S:
        severity = Severity.ERROR  # a small view over large tables: readers wait for the query
    mode = step.effects.strongest().get(view, LockMode.ACCESS_EXCLUSIVE)
    if body.get("skipData"):
        yield Hit(
            message=f"empties {view} holding {describe_lock(mode, view)}; afterwards every "
            f"query of {view} fails until it is refreshed again; {view}: {judged.size}",
            help="refresh it WITH DATA (CONCURRENTLY), or drop it if it is no longer used",
            # Quick whatever the size: the hazard is the failing reads, not the lock.
            severity=Severity.WARNING if severity is Severity.ERROR else severity,
        )
        return
    yield Hit(
        message=f"runs the query of {view} and replaces its contents "
        f"({how_long(est, unknown='as long as the query runs')}) while holding "
        f"{describe_lock(mode, view)}; {view}: {judged.size}",
        help="use REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view)",
        severity=severity,
        fix=fix(step, ctx, view),
    )


def fix(step: Step, ctx: LintContext, view: str) -> Fix:
    """REFRESH ... CONCURRENTLY; applied mechanically only when the catalog shows the unique
    index it needs (plain columns), since without one the refresh fails."""
    sql = _KEYWORD.sub(r"\1 CONCURRENTLY", step.sql, count=1).rstrip().rstrip(";") + ";"
    catalog = ctx.snapshot.catalog if ctx.snapshot is not None else None
    rel = catalog.get(view) if catalog is not None else None
    indexed = rel is not None and any(i.unique and i.valid and all(i.columns) for i in rel.indexes)
    return Fix(
        (FixStatement(sql, Placement.IN_PLACE),),
        mechanical=indexed,
        why_not=None
        if indexed
        else "it needs a unique index on plain columns of the view, and "
        + ("the catalog shows none" if rel is not None else "no catalog was given"),
    )


RULE = Rule(
    code="PW112",
    name="materialized-view-refreshed-under-lock",
    summary="REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every read of the view",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"RefreshMatViewStmt"}),
)
