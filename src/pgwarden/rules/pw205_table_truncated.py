"""Empties a table with TRUNCATE.

## What it does
Flags `TRUNCATE` of a table that existed before the migration.

## Why is this bad?
Every row is gone at COMMIT, with no per-row trace to undo it: only a backup
brings the data back. TRUNCATE also takes ACCESS EXCLUSIVE, so reads and
writes of the table wait (and queue while it waits for the lock). With
`CASCADE` it empties every table that has a foreign key to it as well (see
PW208). Size does not matter: this is an error on any table.

## Example
```sql
TRUNCATE invoice_exports;
```

## Use instead
```sql
-- after a verified backup, and with the reason written down:
TRUNCATE invoice_exports;  -- pgwarden: ignore PW205 cache table, rebuilt nightly
```
Data changes rarely belong in schema migrations. If the table really is
disposable, say so in an ignore comment. To remove old rows from a live
table, delete them in batches (`pgwarden backfill`). Alembic and Django:
`op.execute` / `RunSQL`, with the same comment.

## Fix safety
No fix: deleting data is a decision, not a rewrite.

## References
https://www.postgresql.org/docs/current/sql-truncate.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import qualified, regclass, size_words
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("TruncateStmt")
    if body is None:
        return
    tables = [regclass(r.get("RangeVar")) for r in body.get("relations") or ()]
    existing = [t for t in tables if qualified(t) not in ctx.created]
    if not existing:
        return
    cascade = body.get("behavior") == "DROP_CASCADE"
    also = " and of every table with a foreign key to them" if cascade else ""
    sizes = "".join(size_words(ctx, t) for t in existing)
    yield Hit(
        message=f"deletes every row of {', '.join(existing)}{also}, holding ACCESS EXCLUSIVE "
        f"(blocks reads and writes); the data comes back only from a backup{sizes}",
        help="keep data changes out of schema migrations; if the table is disposable, say why in "
        "an ignore comment (-- pgwarden: ignore PW205 <reason>)",
        severity=Severity.ERROR,
    )


RULE = Rule(
    code="PW205",
    name="table-truncated",
    summary="TRUNCATE deletes every row of an existing table",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"TruncateStmt"}),
)
