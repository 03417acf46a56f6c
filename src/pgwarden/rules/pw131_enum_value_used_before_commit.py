"""Uses a new enum value in the same transaction that added it.

## What it does
Flags `ALTER TYPE ... ADD VALUE 'v'` inside a transaction block when a later
statement of the same transaction mentions `'v'` (an UPDATE, a DEFAULT, a
CHECK, an index predicate, ...). Adding the value inside a transaction is
fine on PostgreSQL 12 and later, and so is using it when the enum type
itself was created in the same transaction; neither is flagged.

## Why is this bad?
Until the transaction that added the value commits, PostgreSQL refuses to
use it: `ERROR: unsafe use of new value "v" of enum type ...`. The migration
fails at deploy time and rolls back, often after slow statements already ran.

## Example
```sql
BEGIN;
ALTER TYPE invoice_status ADD VALUE 'refunded';
UPDATE invoices SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TYPE invoice_status ADD VALUE 'refunded';
COMMIT;
BEGIN;
UPDATE invoices SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
```
Commit the new value before anything uses it: a migration of its own.
Alembic: `op.execute("ALTER TYPE ... ADD VALUE ...")` inside
`autocommit_block()`, or a separate revision. Django: a separate migration
(or `RunSQL` in a migration with `atomic = False`).

## Fix safety
No mechanical fix: the statements have to move to a later transaction.

## References
https://www.postgresql.org/docs/current/sql-altertype.html#SQL-ALTERTYPE-NOTES
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from pgwarden.analysis.nodes import A_Const, walk
from pgwarden.findings import Severity
from pgwarden.plan import Step, TxMode
from pgwarden.rules._sql import dotted, tx_words
from pgwarden.rules.base import Hit, LintContext, Rule


def _mentions(node: object, value: str) -> bool:
    """Whether a string constant equal to `value` appears in the tree."""
    return any(
        key == "A_Const" and cast(A_Const, const).get("sval", {}).get("sval") == value
        for key, const in walk(node)
    )


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("AlterEnumStmt")
    if body is None or not body.get("newVal") or not step.in_transaction:
        return
    enum = dotted(body.get("typeName"))
    value = body["newVal"]
    same_tx = [s for s in ctx.plan.steps if s.transaction == step.transaction]
    created_here = any(
        s.index < step.index and dotted(s.tree.get("CreateEnumStmt", {}).get("typeName")) == enum
        for s in same_tx
    )
    if created_here:
        return
    user = next((s for s in same_tx if s.index > step.index and _mentions(s.tree, value)), None)
    if user is None:
        return
    explicit = step.tx_mode is TxMode.EXPLICIT
    yield Hit(
        message=f"adds value '{value}' to enum {enum} {tx_words(step)}, and line "
        f"{user.location.line} uses '{value}' before COMMIT: PostgreSQL rejects that (unsafe use "
        "of new value) and the migration fails",
        help="commit the ADD VALUE first: move the statements that use the value to a later "
        "transaction (a migration of their own)",
        severity=Severity.ERROR if explicit else Severity.WARNING,
    )


RULE = Rule(
    code="PW131",
    name="enum-value-used-before-commit",
    summary="a new enum value used in the transaction that added it fails at deploy time",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterEnumStmt"}),
)
