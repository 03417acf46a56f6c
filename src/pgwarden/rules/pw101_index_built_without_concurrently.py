"""Builds an index on an existing table without CONCURRENTLY.

## What it does
Flags `CREATE INDEX` (and `CREATE UNIQUE INDEX`) without `CONCURRENTLY` on a
table that existed before the migration.

## Why is this bad?
A plain index build takes a SHARE lock on the table for the whole build: every
INSERT, UPDATE and DELETE waits until the index is complete (reads go on). The
build reads the whole table and sorts it, so on a large table writes stop for
minutes. On a materialized view (which takes no writes) the build only holds
back its refreshes: a warning, not an error.

## Example
```sql
CREATE INDEX invoices_created_at_idx ON invoices (created_at);
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);
```
It takes SHARE UPDATE EXCLUSIVE (writes go on) and cannot run inside a
transaction block. Alembic: `op.create_index(..., postgresql_concurrently=True)`
inside `with op.get_context().autocommit_block():`. Django: `AddIndexConcurrently`
in a migration with `atomic = False`.

## Fix safety
Safe: the index is the same. A failed concurrent build leaves an INVALID
index behind; drop it and retry (`pgwarden apply` does this for you).

## References
https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import quote, regclass
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_CREATE = re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX)\b", re.I)


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("IndexStmt")
    if body is None or body.get("concurrent"):
        return
    if not step.effects.scans:
        return  # nothing is built: IF NOT EXISTS of an existing index, ON ONLY a partitioned table
    table = regclass(body.get("relation"))
    est = ctx.duration(table, kind="index")
    judged = ctx.judge(table, lock_s=est)
    if judged.severity is None:
        return
    how_long = (
        f" for the whole build (~{est:.1f} s estimated)"
        if est is not None
        else " for the whole build"
    )
    kinds = {lk.relation: lk.relkind for lk in step.effects.locks}
    if kinds.get(table, kinds.get(table.removeprefix("public."))) == "materialized view":
        # A materialized view takes no writes: SHARE only holds back its refreshes.
        yield Hit(
            message=f"builds an index on materialized view {table} holding SHARE{how_long}: "
            f"reads go on, REFRESH MATERIALIZED VIEW waits until it is done; {judged.size}",
            help="use CREATE INDEX CONCURRENTLY, outside a transaction block, if a refresh "
            "must not wait",
            severity=Severity.NOTE if judged.severity is Severity.NOTE else Severity.WARNING,
            fix=fix(step, _default_name(step, ctx)),
        )
        return
    yield Hit(
        message=f"builds an index holding {describe_lock(LockMode.SHARE, table)}{how_long}; "
        f"{table}: {judged.size}",
        help="use CREATE INDEX CONCURRENTLY, outside a transaction block",
        severity=judged.severity,
        fix=fix(step, _default_name(step, ctx)),
    )


def fix(step: Step, name: str | None = None) -> Fix | None:
    """The build with CONCURRENTLY; an unnamed one named `name` (the name the server
    would give it), so that running the fixed file again finds it by name and does
    not build another copy."""
    fixed, n = _CREATE.subn(r"\1 CONCURRENTLY", step.sql, count=1)
    if n and name is not None:
        named = quote(name).replace("\\", "\\\\")
        fixed = _UNNAMED.sub(rf"\1 {named} ON", fixed, count=1)
    return Fix((FixStatement(fixed + ";", Placement.BEFORE),)) if n else None


_UNNAMED = re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY)\s+ON\b", re.I)


def _default_name(step: Step, ctx: LintContext) -> str | None:
    """The name the server gives an unnamed index (table_columns_idx), when the catalog
    is known (no relation takes it) and the columns are plain and fit it uncut."""
    body = step.tree.get("IndexStmt") or {}
    if body.get("idxname") or body.get("indexIncludingParams"):
        return None  # named, or INCLUDE columns in the name too
    if ctx.snapshot is None or ctx.snapshot.catalog is None:
        return None
    cols = [p.get("IndexElem", {}).get("name") for p in body.get("indexParams") or ()]
    if not cols or not all(isinstance(c, str) for c in cols) or len(set(cols)) < len(cols):
        return None
    table = str((body.get("relation") or {}).get("relname"))
    name = "_".join([table, *[str(c) for c in cols], "idx"])
    created = [c.rsplit(".", 1)[-1] for c in step.effects.creates]
    fits = len(name.encode()) <= _NAME_BYTES
    return name if fits and created == [name] else None


_NAME_BYTES = 63


RULE = Rule(
    code="PW101",
    name="index-built-without-concurrently",
    summary="CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"IndexStmt"}),
)
