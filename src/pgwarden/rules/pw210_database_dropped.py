"""Drops a whole database from a migration.

## What it does
Flags `DROP DATABASE`.

## Why is this bad?
Every table, every row and every object in the database is gone, and only a
restored backup brings them back. A migration run against the wrong target
(a laptop pointed at production) turns this into the worst incident in
`incidents/`. It cannot even run inside a transaction, so nothing rolls it
back.

## Example
```sql
DROP DATABASE analytics;
```

## Use instead
```sql
-- Not in a migration. Decommission databases with an operations runbook:
-- verified backup (pgwarden backup create, then backup verify), then a manual drop.
SELECT 1;
```
Keep database lifecycle out of schema migrations altogether.

## Fix safety
No fix.

## References
https://www.postgresql.org/docs/current/sql-dropdatabase.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import first_step_naming, ident
from pgwarden.rules.base import Hit, LintContext, Rule

CODE = "PW210"


def _created(step: Step) -> str | None:
    """The database this step creates, if it is a CreatedbStmt."""
    create = step.tree.get("CreatedbStmt")
    return None if create is None else str(create.get("dbname"))


def _created_at(ctx: LintContext) -> dict[str, int]:
    """database -> index of the first step of the plan that creates it."""
    return first_step_naming(ctx, CODE, _created)


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("DropdbStmt")
    if body is None:
        return
    name = body.get("dbname")
    if _created_at(ctx).get(str(name), step.index) < step.index:
        return  # created earlier in this plan
    yield Hit(
        message=f"drops database {ident(str(name))} with every table and row in it; it cannot run "
        "in a transaction, so nothing rolls it back, and only a restored backup brings the data "
        "back",
        help="keep database drops out of migrations: decommission with a runbook, after a "
        "verified backup",
        severity=Severity.ERROR,
    )


RULE = Rule(
    code=CODE,
    name="database-dropped",
    summary="DROP DATABASE in a migration destroys everything in it",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropdbStmt"}),
)
