"""Updates or deletes every row of an existing table in one statement.

## What it does
Flags `UPDATE t SET ...` and `DELETE FROM t` without a `WHERE` clause (or with
one that is constant and true: `WHERE true`, `WHERE 1 = 1`) on a
table that existed before the migration: the typical unbatched backfill; also
in a data-modifying WITH query (`WITH moved AS (DELETE FROM t RETURNING *)
INSERT INTO t_archive SELECT * FROM moved`). An
UPDATE is graded by the table's size and traffic, and is an error whenever the
table holds more than `dml_max_rows` rows (as PW142 grades the same rows
touched through a WHERE); a DELETE is always an error.

## Why is this bad?
One statement touches every row in one transaction. Each row it changes
stays locked until COMMIT, so any concurrent UPDATE, DELETE or
`SELECT ... FOR UPDATE` of those rows waits (plain reads go on); the table
lock is only ROW EXCLUSIVE, but it blocks index builds and most DDL. An
UPDATE writes a new version of every row: a WAL burst that replicas must
replay, twice the table size until vacuum catches up, and an hour-long
transaction that holds back vacuum everywhere. A DELETE without WHERE also
destroys every row. Inside a migration's transaction, every lock taken
earlier is held for the whole statement too (see PW121).

## Example
```sql
UPDATE invoices SET currency = 'EUR';
```

## Use instead
```sql
UPDATE invoices SET currency = 'EUR'
WHERE id >= 1 AND id < 10001 AND currency IS NULL;
-- ... and so on, one short transaction per batch
```
Backfill in batches by primary-key range, each batch its own short
transaction, outside the schema migration: `pgwarden backfill` does this with
throttling and resumes where it stopped. Set the column default for new rows
first, so the backfill only has to cover old rows. Alembic: a data migration
that loops over ranges in `autocommit_block()`. Django: `RunPython` with
`atomic = False`, committing per batch. To empty a table on purpose, see
`TRUNCATE` (PW205).

## Fix safety
No mechanical fix.

## References
https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-ROWS
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.nodes import A_Const, DeleteStmt, Node, UpdateStmt
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import dml_parts, how_long, regclass, strings
from pgwarden.rules.base import Hit, LintContext, Rule

_HELP = (
    "batch it by primary-key range, one short transaction per batch, outside the schema "
    "migration (pgwarden backfill)"
)


def _value(const: A_Const) -> dict[str, object]:
    return {k: v for k, v in const.items() if k != "location"}


def always_true(where: Node) -> bool:
    """`WHERE true`, `WHERE 1 = 1`, `WHERE 'a' = 'a'`: a constant condition that holds."""
    const = where.get("A_Const")
    if const is not None:
        return bool(const.get("boolval", {}).get("boolval"))
    expr = where.get("A_Expr")
    if expr is not None and expr.get("kind") == "AEXPR_OP":
        ops = strings(expr.get("name"))
        left, right = expr.get("lexpr", {}), expr.get("rexpr", {})
        if ops == ["="] and "A_Const" in left and "A_Const" in right:
            return _value(left["A_Const"]) == _value(right["A_Const"])
    return False


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for i, (kind, body) in enumerate(dml_parts(step)):
        where = body.get("whereClause")
        if not where or always_true(where):
            own = i == 0 and kind == step.kind
            yield from _whole_table(kind, body, ctx, "" if own else "its WITH query ")


def _whole_table(
    kind: str, body: UpdateStmt | DeleteStmt, ctx: LintContext, who: str
) -> Iterator[Hit]:
    table = regclass(body.get("relation"))
    est = ctx.duration(table, rewrite=True)
    judged = ctx.judge(table, lock_s=est)
    if judged.severity is None:
        return
    if kind == "UpdateStmt":
        severity, limit = judged.severity, ""
        stats = ctx.snapshot.table(table) if ctx.snapshot is not None else None
        if stats is not None and stats.rows > ctx.dml.max_rows and severity is not Severity.ERROR:
            # as PW142 grades the same rows touched through a WHERE
            severity, limit = Severity.ERROR, f", more than dml_max_rows = {ctx.dml.max_rows:,}"
        yield Hit(
            message=f"{who}updates every row of {table} in one statement ({how_long(est)}): "
            "each row stays locked until COMMIT, so concurrent writes to any row wait (reads go "
            "on), and a "
            f"new version of every row is written (WAL burst, replica lag, bloat); "
            f"{table}: {judged.size}{limit}",
            help=_HELP,
            severity=severity,
        )
        return
    yield Hit(
        message=f"{who}deletes every row of {table} in one statement ({how_long(est)}): the "
        "data is gone, each row stays locked until COMMIT so concurrent writes to it wait, and "
        f"dead rows fill the table until vacuum; {table}: {judged.size}",
        help="if the rows must go, delete in batches (pgwarden backfill) after a verified backup; "
        "if the table should go, stop using it and drop it in a later release",
        severity=Severity.ERROR,
    )


RULE = Rule(
    code="PW140",
    name="whole-table-update-or-delete",
    summary="UPDATE or DELETE without WHERE locks every row in one huge transaction",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"UpdateStmt", "DeleteStmt", "SelectStmt", "InsertStmt"}),
)
