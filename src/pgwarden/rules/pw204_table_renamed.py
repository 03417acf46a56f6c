"""Renames a table (or view), or moves it to another schema, under running code.

## What it does
Flags `ALTER TABLE ... RENAME TO`, `ALTER TABLE ... SET SCHEMA` and the same
on views and materialized views, for relations that existed before the
migration. Not flagged when a later statement of the plan creates a view
with the old name (a compatibility view: simple views are updatable, so old
code keeps reading and writing through it).

Severity: warning. The lock is brief whatever the table's size; whether the
change breaks anything depends on the code still deployed, which only you
know. `--fail-on warning` (or `fail_on = "warning"`) makes it fail CI.

## Why is this bad?
Every query that names the old table fails from the moment the rename
commits until all code is redeployed; old code keeps running during a
rolling deploy. The rename is quick but takes ACCESS EXCLUSIVE, so it queues
traffic while it waits.

## Example
```sql
ALTER TABLE invoices RENAME TO bills;
```

## Use instead
```sql
BEGIN;
ALTER TABLE invoices RENAME TO bills;
CREATE VIEW invoices AS SELECT * FROM bills;
COMMIT;
-- drop the view in a later release, once no code uses the old name.
```
Rename and create a view with the old name in the same transaction, so both
names work; drop the view when the code has moved. Alembic:
`op.rename_table` plus `op.execute("CREATE VIEW ...")`. Django: set
`db_table` to the new name in a release after the rename, with the view
bridging the gap (`RunSQL`).

## Fix safety
No mechanical fix.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-RENAME
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import ident, qualified, regclass, size_words
from pgwarden.rules.base import Hit, LintContext, Rule

_KINDS = {
    "OBJECT_TABLE": "table",
    "OBJECT_VIEW": "view",
    "OBJECT_MATVIEW": "materialized view",
    "OBJECT_FOREIGN_TABLE": "foreign table",
}


def _change(step: Step) -> tuple[str, str] | None:
    """(relation, words for the change) of a rename or schema move."""
    rename = step.tree.get("RenameStmt")
    if rename is not None and rename.get("renameType") in _KINDS:
        rel = regclass(rename.get("relation"))
        return (
            rel,
            f"renames {_KINDS[rename['renameType']]} {rel} to {ident(str(rename.get('newname')))}",
        )
    move = step.tree.get("AlterObjectSchemaStmt")
    if move is not None and move.get("objectType") in _KINDS:
        rel = regclass(move.get("relation"))
        kind = _KINDS[move["objectType"]]
        return rel, f"moves {kind} {rel} to schema {ident(str(move.get('newschema')))}"
    return None


CODE = "PW204"


def _last_view(ctx: LintContext) -> dict[str, int]:
    """view -> index of the plan's last step that creates it (built once per lint)."""
    views = cast("dict[str, int] | None", ctx.state.get(CODE))
    if views is None:
        views = {}
        for s in ctx.plan.steps:
            if s.kind == "ViewStmt":
                views[regclass(s.tree["ViewStmt"].get("view"))] = s.index
        ctx.state[CODE] = views
    return views


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    change = _change(step)
    if change is None:
        return
    rel, words = change
    if qualified(rel) in ctx.created:
        return
    if _last_view(ctx).get(rel, -1) > step.index:
        return  # a later CREATE VIEW under the old name bridges the rename
    yield Hit(
        message=f"{words} (ACCESS EXCLUSIVE on {rel}, blocks reads and writes, briefly); every "
        f"query still naming {rel} fails until all code is redeployed, old code during a "
        f"rolling deploy included{size_words(ctx, rel)}",
        help=f"in the same transaction, CREATE VIEW {rel} AS SELECT * FROM <new name> so both "
        "names work; drop the view once the code has moved",
        severity=Severity.WARNING,
    )


RULE = Rule(
    code=CODE,
    name="table-renamed",
    summary="renaming a table or moving it to another schema breaks code using the old name",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"RenameStmt", "AlterObjectSchemaStmt"}),
)
