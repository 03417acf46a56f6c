"""A file opens a transaction with BEGIN and never ends it.

## What it does
Flags the last statement of a file when it runs inside a `BEGIN` written in
that file and no `COMMIT` (or `ROLLBACK`) follows. (Alembic's offline SQL,
which may open one transaction for several revisions, is followed across
revision files.)

## Why is this bad?
What happens then depends on the runner, and none of it is what was meant.
`psql -f` ends the session and the server rolls everything back: the
migration silently did nothing. A runner that keeps the connection open
(a REPL, a pooled connection, a tool running several files on one session)
carries the open transaction into whatever runs next, with every lock taken
so far still held: an `ALTER TABLE` at the top keeps ACCESS EXCLUSIVE on its
table until someone notices.

## Example
```sql
BEGIN;
ALTER TABLE invoices ADD COLUMN note text;
```

## Use instead
```sql
BEGIN;
ALTER TABLE invoices ADD COLUMN note text;
COMMIT;
```

## Fix safety
No mechanical fix: whether the file was meant to commit or to be rolled back
(a dry run) is the author's call.

## References
https://www.postgresql.org/docs/current/sql-begin.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step, TxMode
from pgwarden.rules.base import Hit, LintContext, Rule

_ENDS = {"TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE"}


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    if step.tx_mode is not TxMode.EXPLICIT:
        return
    steps = ctx.plan.steps
    nxt = step.index + 1
    if nxt < len(steps) and steps[nxt].transaction == step.transaction:
        return  # the transaction goes on (later in the file, or in the next Alembic revision)
    if step.tree.get("TransactionStmt", {}).get("kind") in _ENDS:
        return
    yield Hit(
        message=f"{step.location.path} ends inside the transaction its BEGIN opened: psql rolls "
        "it all back when the session ends, and a runner that keeps the connection carries "
        "the open transaction, and every lock taken in it, into whatever runs next",
        help="end the file with COMMIT; (or ROLLBACK; if it is meant as a dry run)",
        severity=Severity.WARNING,
    )


RULE = Rule(
    code="PW132",
    name="transaction-left-open",
    summary="a BEGIN in the file is never followed by COMMIT or ROLLBACK",
    doc=__doc__ or "",
    check=check,
)
