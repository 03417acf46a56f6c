"""Drops a schema.

## What it does
Flags `DROP SCHEMA` of a schema that was not created earlier in the plan.

## Why is this bad?
Without `CASCADE` it fails unless the schema is empty; with `CASCADE` it
drops every table, view, function and type in it, with all their data, in
one statement. Code that uses any of them fails from that moment, and the
data comes back only from a backup.

## Example
```sql
DROP SCHEMA reporting CASCADE;
```

## Use instead
```sql
-- after moving or dropping each object on purpose, in earlier releases:
DROP SCHEMA reporting;
```
Drop the objects one by one (each drop gets its own review), then drop the
empty schema without `CASCADE`, which fails safely if something was missed.
If the whole schema really is disposable, take and verify a backup and say
so in an ignore comment.

## Fix safety
No fix: dropping data is a decision, not a rewrite.

## References
https://www.postgresql.org/docs/current/sql-dropschema.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import first_step_naming, ident, strings
from pgwarden.rules.base import Hit, LintContext, Rule

CODE = "PW206"


def _created(step: Step) -> str | None:
    """The schema this step creates, if it is a CreateSchemaStmt."""
    create = step.tree.get("CreateSchemaStmt")
    return None if create is None else str(create.get("schemaname"))


def schemas_created_at(ctx: LintContext) -> dict[str, int]:
    """schema -> index of the first step of the plan that creates it (PW209 reads it too)."""
    return first_step_naming(ctx, CODE, _created)


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("DropStmt")
    if body is None or body.get("removeType") != "OBJECT_SCHEMA":
        return
    if body.get("behavior") != "DROP_CASCADE":
        return  # an empty schema: fails safely if anything is still in it
    created = schemas_created_at(ctx)
    for schema in strings(body.get("objects")):
        if created.get(schema, step.index) < step.index:
            continue  # created earlier in this plan
        yield Hit(
            message=f"drops schema {ident(schema)} and, through CASCADE, every table, view, "
            "function and type in it with all their data; code using any of them fails from this "
            "moment, and the data comes back only from a backup",
            help="drop the objects one by one in earlier releases, then DROP SCHEMA without "
            "CASCADE (it fails safely if anything is left)",
            severity=Severity.ERROR,
        )


RULE = Rule(
    code=CODE,
    name="schema-dropped",
    summary="DROP SCHEMA ... CASCADE drops every object in the schema with its data",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropStmt"}),
)
