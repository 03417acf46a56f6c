"""Takes a blocking lock with no lock_timeout set.

## What it does
Flags a statement that takes a lock blocking reads or writes on an existing
table (or ACCESS EXCLUSIVE on a view or materialized view, which blocks its
readers: DROP VIEW, CREATE OR REPLACE VIEW)
when no `SET lock_timeout` (or `SET LOCAL lock_timeout`, or
`SELECT set_config('lock_timeout', ...)`) precedes it in its session or
transaction (a `SET LOCAL` outside any transaction block sets nothing); a
`RESET ALL` after it takes it back. One finding per transaction
(statements outside any transaction: one per file), at the first statement
that waits; one `SET lock_timeout` at the top covers the others of its file (a
later .sql file may run alone, on a connection of its own, so it needs its own;
Alembic's env.py and Django's runner settings cover every migration).

## Why is this bad?
A statement that must wait for its lock (behind a long report, an idle
transaction, autovacuum) queues every later query on that table behind it:
while DDL waits for ACCESS EXCLUSIVE, nobody can read. Without a timeout the
wait, and the pile-up, is unbounded.

## Example
```sql
ALTER TABLE invoices ADD COLUMN note text;
```

## Use instead
```sql
SET lock_timeout = '1s';
ALTER TABLE invoices ADD COLUMN note text;
```
Retry on failure (`pgwarden apply` retries with backoff and never drops the
timeout). Alembic and Django: run `SET lock_timeout` at the start of the
migration (`op.execute(...)`, `RunSQL(...)`), or let `pgwarden apply` do it.

## Fix safety
Safe (the fix is the session setting alone, written once at the top of the
file; another rule's fix of the same statement replaces the statement): the
statement may now fail with `lock_not_available` instead of waiting;
the migration must be retried.

## References
https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode, RelationLock
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step, TxMode
from pgwarden.rules._sql import in_file_where
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_TABLES = ("table", "partitioned table")
# ACCESS EXCLUSIVE on a view or materialized view blocks its readers while it waits, as
# on a table (DROP VIEW, CREATE OR REPLACE VIEW of a view in use)
_WAITED_ON = {LockMode.ACCESS_EXCLUSIVE: (*_TABLES, "view", "materialized view")}


def _mode(lock: RelationLock) -> LockMode:
    return lock.mode


def _scope(step: Step) -> object:
    """What one finding covers: the step's transaction, else its file; a DO block (or
    CALL) outside any transaction block, the whole body, COMMITs in it or not."""
    if step.tx_mode is TxMode.BODY:
        return ("body", step.index)
    return step.transaction if step.transaction is not None else step.location.path


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    if ctx.lock_timeout_active(step):
        return
    reported = ctx.state.get(CODE)
    if not isinstance(reported, set):
        reported = ctx.state[CODE] = set()
    if _scope(step) in reported:
        return
    for lock in sorted(step.effects.locks, key=_mode, reverse=True):
        if not lock.mode.blocks_writes or lock.relkind not in _WAITED_ON.get(lock.mode, _TABLES):
            continue
        judged = ctx.judge(lock.relation)
        if judged.severity is None:
            continue
        reported.add(_scope(step))
        alone = _becomes_concurrent(step) and in_file_where(
            step, ctx, "PW120.one_query", lambda t: t.one_query or t.split_parts
        )
        yield Hit(
            message=f"waits for {describe_lock(lock.mode, lock.relation)} with no lock_timeout: "
            f"while it waits, every later query on {lock.relation} queues behind it",
            help="set lock_timeout for the role the migrations run as (ALTER ROLE <role> SET "
            "lock_timeout = '1s') and retry on failure: the tool sends this file as one query, "
            "where the CONCURRENTLY form of this statement runs only alone, with no SET beside it"
            if alone
            else "SET lock_timeout = '1s' (or less) before this statement and retry on failure; "
            "later statements of the same transaction (or file) are not reported again",
            severity=Severity.WARNING,
            fix=None
            if alone
            else Fix(
                (
                    FixStatement(
                        "SET lock_timeout = '1s';", Placement.SESSION, "at the top of the file:"
                    ),
                )
            ),
        )
        return


def _becomes_concurrent(step: Step) -> bool:
    """A CREATE INDEX, DROP INDEX or REINDEX without CONCURRENTLY: the safe form another
    rule's fix gives it cannot share a query with a SET."""
    if step.kind in ("IndexStmt", "ReindexStmt"):
        return True
    drop = step.tree.get("DropStmt")
    return drop is not None and drop.get("removeType") == "OBJECT_INDEX"


CODE = "PW120"

RULE = Rule(
    code=CODE,
    name="lock-timeout-missing",
    summary="a blocking lock is requested with no lock_timeout, so the wait queues traffic",
    doc=__doc__ or "",
    check=check,
)
