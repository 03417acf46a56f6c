"""Drops an index without CONCURRENTLY, taking ACCESS EXCLUSIVE on its table.

## What it does
Flags `DROP INDEX` without `CONCURRENTLY` for an index that existed before
the migration and that no earlier statement of the plan dropped (a repeated
`DROP INDEX IF EXISTS` finds nothing and locks nothing).

## Why is this bad?
A plain `DROP INDEX` takes ACCESS EXCLUSIVE on the index's table. The drop
itself is quick, but it must first wait for every running query on the
table, and while it waits every new query, reads included, queues behind it.
On a busy table with one slow report running, that is an outage of the
report's length.

## Example
```sql
DROP INDEX invoices_payment_account_id_idx;
```

## Use instead
```sql
DROP INDEX CONCURRENTLY invoices_payment_account_id_idx;
```
`CONCURRENTLY` waits for running queries without blocking new ones. It
cannot run inside a transaction block, drops one index per statement and
does not support `CASCADE`. Alembic: `op.drop_index(...,
postgresql_concurrently=True)` inside `autocommit_block()`. Django:
`RemoveIndexConcurrently` in a migration with `atomic = False`.

When the next statement of the file builds an index of the same name (a
rebuild: `DROP INDEX i; CREATE UNIQUE INDEX i ON ...`), the fix builds the new
one first under another name, then drops the old one and gives the new one
its name:
```sql
CREATE UNIQUE INDEX CONCURRENTLY i_pgwarden_new ON ...;
DROP INDEX CONCURRENTLY i;
ALTER INDEX i_pgwarden_new RENAME TO i;
```
Dropping first, as the two statements are written, would leave the table
without the index (and without its uniqueness) for the whole concurrent build.

## Fix safety
Safe: the result is the same. A failed concurrent drop leaves an invalid
index; run the drop again. A rebuild run again builds the index once more
and swaps it in the same way.

## References
https://www.postgresql.org/docs/current/sql-dropindex.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import quote
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import TABLE_KINDS, dotted, qualified
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

CODE = "PW207"
_KEYWORD = re.compile(r"^(\s*DROP\s+INDEX)\b", re.I)


def _dropped(ctx: LintContext) -> set[str]:
    """Indexes earlier steps dropped (a later DROP finds none, or one the plan created)."""
    return cast("set[str]", ctx.state.setdefault(CODE, set()))


def observe(step: Step, ctx: LintContext) -> None:
    """Remember the indexes a DROP INDEX dropped."""
    body = step.tree.get("DropStmt")
    if body is not None and body.get("removeType") == "OBJECT_INDEX":
        for o in body.get("objects") or ():
            _dropped(ctx).add(qualified(dotted(o.get("List", {}).get("items"))))


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("DropStmt")
    if body is None or body.get("removeType") != "OBJECT_INDEX":
        return
    if body.get("concurrent"):
        return
    indexes = [dotted(o.get("List", {}).get("items")) for o in body.get("objects") or ()]
    gone = _dropped(ctx)
    indexes = [i for i in indexes if qualified(i) not in ctx.created and qualified(i) not in gone]
    if not indexes:
        return
    tables = [lk.relation for lk in step.effects.locks if lk.relkind in TABLE_KINDS]
    judged = [ctx.judge(t) for t in tables]
    if tables and all(j.severity is None for j in judged):
        return
    # The drop is quick; the harm is the queue that forms while it waits for the lock.
    small = bool(judged) and all(j.severity in (None, Severity.NOTE) for j in judged)
    on = (
        " and ".join(describe_lock(LockMode.ACCESS_EXCLUSIVE, t) for t in tables)
        if tables
        else "ACCESS EXCLUSIVE on its table (blocks reads and writes)"
    )
    sizes = "".join(f"; {t}: {j.size}" for t, j in zip(tables, judged, strict=True))
    single = len(indexes) == 1 and body.get("behavior") != "DROP_CASCADE"
    rebuild = _rebuilt_by(step, ctx, indexes[0]) if single else None
    yield Hit(
        message=f"drops {', '.join(indexes)} holding {on}: quick once granted, but while it "
        f"waits for running queries every new query on the table queues behind it{sizes}",
        help="use DROP INDEX CONCURRENTLY, outside a transaction block (one index per statement)",
        severity=Severity.NOTE if small else Severity.WARNING,
        fix=_swap(indexes[0], rebuild)
        if rebuild is not None
        else Fix(
            (
                FixStatement(
                    _KEYWORD.sub(r"\1 CONCURRENTLY", step.sql, count=1).rstrip().rstrip(";") + ";",
                    Placement.BEFORE,
                ),
            )
        )
        if single
        else None,
    )


def _rebuilt_by(step: Step, ctx: LintContext, index: str) -> Step | None:
    """The CREATE INDEX of the same name that is the next statement of the DROP's file
    (BEGIN, COMMIT and SET between them aside): a rebuild of the index."""
    schema, _, name = index.rpartition(".")
    for later in ctx.plan.steps[step.index + 1 :]:
        if later.location.path != step.location.path:
            return None
        if later.kind in ("TransactionStmt", "VariableSetStmt"):
            continue
        body = later.tree.get("IndexStmt")
        if body is None or body.get("idxname") != name.strip('"').replace('""', '"'):
            return None
        on = (body.get("relation") or {}).get("schemaname")
        return later if (on or "") == schema.strip('"') and _NAMED.match(later.sql) else None
    return None


def _swap(index: str, rebuild: Step) -> Fix:
    """The rebuild's index built concurrently under a name of its own, then swapped in for
    the old one: the table is never without it."""
    schema, _, name = index.rpartition(".")
    bare = name.strip('"').replace('""', '"')
    new = quote(bare.encode()[: _NAME_BYTES - len(_NEW)].decode(errors="ignore") + _NEW)
    build = _NAMED.sub(rf"\1 CONCURRENTLY {new.replace(chr(92), chr(92) * 2)} ON", rebuild.sql)
    prefix = f"{schema}." if schema else ""
    return Fix(
        (
            FixStatement(build.rstrip().rstrip(";") + ";", Placement.BEFORE),
            FixStatement(f"DROP INDEX CONCURRENTLY {index};", Placement.BEFORE),
            FixStatement(f"ALTER INDEX {prefix}{new} RENAME TO {name};", Placement.BEFORE),
        )
    )


# CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON: the name, to replace
_NAMED = re.compile(
    r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX)\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    r'(?:"(?:[^"]|"")+"|[^\s"(]+)\s+ON\b',
    re.I,
)
_NEW = "_pgwarden_new"
_NAME_BYTES = 63


RULE = Rule(
    code=CODE,
    name="index-dropped-without-concurrently",
    summary="DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropStmt"}),
    observe=observe,
    observe_kinds=frozenset({"DropStmt"}),
)
