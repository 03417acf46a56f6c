"""Drops everything a role owns in the database.

## What it does
Flags `DROP OWNED BY role`.

## Why is this bad?
It drops every table, view, sequence, function and type the role owns in the
current database, with all their rows, and revokes the role's privileges.
Migrations usually run as the role that owns the application's tables, so
`DROP OWNED BY app` (or `DROP OWNED BY CURRENT_USER`), meant to clean up a
retired role, empties the whole application schema. Nothing in the statement
names what goes, and only a restored backup brings the data back once the
transaction commits.

## Example
```sql
DROP OWNED BY legacy_app;
```

## Use instead
```sql
REASSIGN OWNED BY legacy_app TO app_owner;  -- hand its objects over first
DROP OWNED BY legacy_app;                   -- now only drops its privileges
DROP ROLE legacy_app;
```
Run it outside the schema migrations, after `REASSIGN OWNED` and a check
that the role owns nothing (`SELECT ... FROM pg_class WHERE relowner = ...`).

## Fix safety
No fix.

## References
https://www.postgresql.org/docs/current/sql-drop-owned.html
https://www.postgresql.org/docs/current/role-removal.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.nodes import role_names
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules.base import Hit, LintContext, Rule

CODE = "PW214"


def _reassigned(ctx: LintContext, step: Step, roles: set[str]) -> bool:
    """Whether an earlier REASSIGN OWNED BY in the plan handed these roles' objects over."""
    for earlier in ctx.plan.steps[: step.index]:
        body = earlier.tree.get("ReassignOwnedStmt")
        if body is not None and roles <= set(role_names(body.get("roles"))):
            return True
    return False


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("DropOwnedStmt")
    if body is None:
        return
    roles = role_names(body.get("roles"))
    if _reassigned(ctx, step, set(roles)):
        return  # what they owned was handed over: this only drops their privileges
    who = ", ".join(roles)
    yield Hit(
        message=f"drops every table, view, sequence, function and type {who} owns in this "
        "database, with all their rows (and revokes its privileges); the statement names none "
        "of them, and a migration usually runs as the role that owns the application's tables",
        help=f"REASSIGN OWNED BY {who} TO <another role> first, then DROP OWNED only drops "
        "privileges; retire roles outside the schema migrations",
        severity=Severity.ERROR,
    )


RULE = Rule(
    code=CODE,
    name="owned-objects-dropped",
    summary="DROP OWNED BY drops every object the role owns, with its data",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropOwnedStmt"}),
)
