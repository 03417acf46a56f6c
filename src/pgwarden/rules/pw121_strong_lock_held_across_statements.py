"""Keeps a blocking lock from an earlier statement while a later, slow statement runs.

## What it does
Flags a statement that reads, rewrites or updates a whole existing relation
(a scan, a rewrite, an index build, a validation, a backfill UPDATE or
DELETE) when an earlier statement of the same transaction took a lock that
blocks reads or writes on an existing table, and this statement does not
take that lock itself. The transaction is the `BEGIN ... COMMIT` written in
the file or, by default, the one transaction the migration runner wraps each
file in. A finding names the first three such locks and counts the rest.

## Why is this bad?
A lock is released at COMMIT, not when the statement that took it ends. A
quick `ALTER TABLE ... ADD COLUMN` takes ACCESS EXCLUSIVE for a moment; if
the same transaction then backfills the column, validates a constraint or
builds an index, that ACCESS EXCLUSIVE stays held for the whole slow step and
nobody can read or write the table. This is how `NOT VALID` followed by
`VALIDATE` in one transaction loses the benefit of `NOT VALID`.

## Example
```sql
BEGIN;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive
    CHECK (amount_cents > 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive
    CHECK (amount_cents > 0) NOT VALID;
COMMIT;
BEGIN;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
COMMIT;
```
Give the slow statement a transaction of its own: commit right after the
statement that takes the strong lock. Alembic: put them in separate
revisions (or use `transaction_per_migration` and an `autocommit_block()`).
Django: separate migrations, or `atomic = False` and one `RunSQL` per step.
With `pgwarden lint`, files run as one transaction each unless you pass
`--no-file-transaction`.

## Fix safety
No mechanical fix: splitting a transaction changes what a failure leaves
behind, so decide where to commit by hand.

## References
https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import TABLE_KINDS, how_long, qualified, regclass, tx_words
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_TABLE_KINDS = frozenset(TABLE_KINDS)
# Locks named in a finding; the rest are counted. Naming every earlier lock made the
# findings of a long transaction grow with the square of its length.
NAMED = 3
_DML = {"UpdateStmt": "updates", "DeleteStmt": "deletes", "InsertStmt": "inserts"}


def _slow(step: Step, ctx: LintContext) -> tuple[str, float | None] | None:
    """What makes `step` take long on existing data, and its estimated seconds."""
    existing = [
        r for r in (*step.effects.rewrites, *step.effects.scans) if qualified(r) not in ctx.created
    ]
    if existing:
        rels = list(dict.fromkeys(existing, True))
        rewrites = set(step.effects.rewrites)
        work = "index" if step.kind == "IndexStmt" else "scan"
        times = [ctx.duration(r, kind="rewrite" if r in rewrites else work) for r in rels]
        est = sum(t for t in times if t is not None) if all(t is not None for t in times) else None
        verb = "rewrites" if rewrites & set(rels) else "reads all of"
        return f"{verb} {', '.join(rels)}", est
    insert = step.tree.get("InsertStmt")
    changed = step.tree.get("UpdateStmt") or step.tree.get("DeleteStmt")
    dml = insert or changed
    if dml is not None:
        table = regclass(dml.get("relation"))
        if qualified(table) in ctx.created:
            return None
        if insert is not None:
            select = insert.get("selectStmt", {}).get("SelectStmt", {})
            if not select.get("fromClause"):
                return None  # INSERT ... VALUES: a few rows
            return f"copies rows into {table}", None
        whole = not (changed or {}).get("whereClause")
        est = ctx.duration(table, rewrite=True) if whole else None
        rows = "every row" if whole else "rows"
        return f"{_DML[step.kind]} {rows} of {table}", est
    return None


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    held = ctx.held_before(step)
    if not held:
        return
    slow = _slow(step, ctx)
    if slow is None:
        return
    doing, est = slow
    own = step.effects.strongest()
    parts: list[str] = []
    sizes: list[str] = []
    worst: Severity | None = None
    count = 0
    for rel, (mode, earlier) in held.items():
        if not mode.blocks_writes or qualified(rel) in ctx.created or own.get(rel, 0) >= mode:
            continue
        if not any(
            lk.relation == rel and lk.relkind in _TABLE_KINDS for lk in earlier.effects.locks
        ):
            continue
        judged = ctx.judge(rel, lock_s=est)
        if judged.severity is None:
            continue
        if worst is None or judged.severity.rank > worst.rank:
            worst = judged.severity
        count += 1
        if count > NAMED:
            continue
        where = earlier.location
        at = f"line {where.line}" if where.path == step.location.path else str(where)
        parts.append(f"{describe_lock(mode, rel)}, taken at {at}")
        sizes.append(f"{rel}: {judged.size}")
    if worst is None:
        return
    if count > NAMED:
        parts.append(f"{count - NAMED:,} more such locks")
        sizes.append(f"(and {count - NAMED:,} more tables)")
    yield Hit(
        message=f"{' and '.join(parts)}, {'is' if count == 1 else 'are'} still held while "
        f"this statement {doing} ({how_long(est)}): locks live until COMMIT and this runs "
        f"{tx_words(step)}, so that traffic waits for this statement too; {'; '.join(sizes)}",
        help="commit right after the statement that takes the strong lock and run this one in its "
        "own transaction (its own migration, or its own BEGIN ... COMMIT block in the file)",
        severity=worst,
    )


RULE = Rule(
    code="PW121",
    name="strong-lock-held-across-statements",
    summary="a lock taken earlier in the transaction blocks traffic during a later slow statement",
    doc=__doc__ or "",
    check=check,
)
