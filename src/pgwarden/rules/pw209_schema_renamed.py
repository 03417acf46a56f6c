"""Renames a schema that running code uses by its old name.

## What it does
Flags `ALTER SCHEMA s RENAME TO t` for a schema that was not created earlier
in the plan.

Severity: warning. The lock is brief whatever the table's size; whether the
change breaks anything depends on the code still deployed, which only you
know. `--fail-on warning` (or `fail_on = "warning"`) makes it fail CI.

## Why is this bad?
Every query that names the old schema (`s.invoices`), every `search_path`
setting that lists it and every function body that mentions it stop working
the moment the rename commits, for all code still deployed. There is no
compatibility view for a schema.

## Example
```sql
ALTER SCHEMA billing RENAME TO finance;
```

## Use instead
```sql
CREATE SCHEMA finance;
-- move objects one at a time (ALTER TABLE ... SET SCHEMA finance), each with a
-- compatibility view left behind in billing, then drop billing in a later release.
```
Move the objects one at a time, keeping the old names working with views,
and retire the old schema once no code uses it. Alembic and Django: by hand
with `op.execute` / `RunSQL`.

## Fix safety
No mechanical fix.

## References
https://www.postgresql.org/docs/current/sql-alterschema.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import ident
from pgwarden.rules.base import Hit, LintContext, Rule
from pgwarden.rules.pw206_schema_dropped import schemas_created_at

CODE = "PW209"


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("RenameStmt")
    if body is None or body.get("renameType") != "OBJECT_SCHEMA":
        return
    old = str(body.get("subname"))
    if schemas_created_at(ctx).get(old, step.index) < step.index:
        return  # created earlier in this plan
    was, now = ident(old), ident(str(body.get("newname")))
    yield Hit(
        message=f"renames schema {was} to {now}: every query, search_path "
        f"and function that names {was} fails from this moment, for all code still deployed",
        help="create the new schema and move objects one at a time, leaving views under the old "
        "names, then drop the old schema in a later release",
        severity=Severity.WARNING,
    )


RULE = Rule(
    code=CODE,
    name="schema-renamed",
    summary="renaming a schema breaks every query that names it",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"RenameStmt"}),
)
