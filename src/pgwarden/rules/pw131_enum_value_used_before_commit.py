"""Uses a new enum value in the same transaction that added it.

## What it does
Flags `ALTER TYPE ... ADD VALUE 'v'` inside a transaction block when a later
statement of the same transaction mentions `'v'` (an UPDATE, a DEFAULT, a
CHECK, an index predicate, ...). Adding the value inside a transaction is
fine on PostgreSQL 12 and later, and so is using it when the enum type
itself was created in the same transaction; neither is flagged. A DO block (or
a procedure a CALL runs) is one transaction of its own: a value its body adds
and then uses is always an error.

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

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from pgwarden.analysis.nodes import A_Const, walk
from pgwarden.findings import Severity
from pgwarden.plan import Step, TxMode
from pgwarden.rules._sql import dotted, tx_words
from pgwarden.rules.base import Hit, LintContext, Rule

CODE = "PW131"


_Key = tuple[int, int, int, str]


def _key(step: Step) -> _Key:
    """A step among the steps the rules check: a DO block's sub-steps share its index."""
    return (step.index, step.location.line, step.location.column, step.sql)


@dataclass(slots=True)
class _Tx:
    """One transaction block of the plan, indexed for look-ups; steps are compared by
    their position in it (a DO body's statements run in order under one index)."""

    steps: list[Step] = field(default_factory=list)
    at: dict[_Key, int] = field(default_factory=dict)  # step -> its position in `steps`
    enums: dict[str, int] = field(default_factory=dict)  # enum -> first position creating it
    uses: dict[str, list[int]] | None = None  # string constant -> positions using it


def _transaction(ctx: LintContext, tx: int) -> _Tx:
    """The steps of transaction `tx`; every block is grouped once per lint. Grouped from
    the steps the rules check: a DO (or CALL) outside any transaction block runs its body
    in a transaction of its own, which only its sub-steps carry."""
    txs = cast("dict[int, _Tx] | None", ctx.state.get(CODE))
    if txs is None:
        txs = {}
        for s in ctx.plan.lint_steps():
            if s.transaction is None:
                continue
            block = txs.get(s.transaction)
            if block is None:
                block = txs[s.transaction] = _Tx()
            block.at.setdefault(_key(s), len(block.steps))
            block.steps.append(s)
            create = s.tree.get("CreateEnumStmt")
            if create is not None:
                block.enums.setdefault(dotted(create.get("typeName")), len(block.steps) - 1)
        ctx.state[CODE] = txs
    return txs[tx]


def _first_use(block: _Tx, value: str, after: int) -> Step | None:
    """The first step of `block` after position `after` with the string constant `value`."""
    if block.uses is None:
        block.uses = {}
        for at, s in enumerate(block.steps):
            found = {
                cast(A_Const, const).get("sval", {}).get("sval")
                for key, const in walk(s.tree)
                if key == "A_Const"
            }
            for sval in found:
                if sval is not None:
                    block.uses.setdefault(sval, []).append(at)
    users = block.uses.get(value, [])
    k = bisect_right(users, after)
    return block.steps[users[k]] if k < len(users) else None


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("AlterEnumStmt")
    if body is None or not body.get("newVal") or step.transaction is None:
        return
    enum = dotted(body.get("typeName"))
    value = body["newVal"]
    block = _transaction(ctx, step.transaction)
    at = block.at.get(_key(step), -1)
    if block.enums.get(enum, at) < at:
        return  # the type was created earlier in this transaction
    user = _first_use(block, value, at)
    if user is None:
        return
    same_body = user.index == step.index  # both in one DO block or procedure body
    certain = same_body or step.tx_mode is TxMode.EXPLICIT
    where = f", and line {user.location.line} of the same body"
    if not same_body:
        where = f" {tx_words(step, ctx)}, and line {user.location.line}"
    yield Hit(
        message=f"adds value '{value}' to enum {enum}{where} uses '{value}' before COMMIT: "
        "PostgreSQL rejects that (unsafe use of new value) and the migration fails",
        help="commit the ADD VALUE first: move the statements that use the value to a later "
        "transaction (a migration of their own)",
        severity=Severity.ERROR if certain else Severity.WARNING,
    )


RULE = Rule(
    code=CODE,
    name="enum-value-used-before-commit",
    summary="a new enum value used in the transaction that added it fails at deploy time",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterEnumStmt"}),
)
