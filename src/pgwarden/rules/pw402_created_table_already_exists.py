"""Creates a table that the stats snapshot shows already exists.

## What it does
Flags `CREATE TABLE` of a table that the stats snapshot (`--stats`, or
`--database-url`) shows existing, unless the same plan dropped it first. The
linted range then includes migrations the database already ran (an Alembic
range from `base`, a Django app linted from zero, old SQL files). The table
is not treated as new: later statements on it are judged by its size in the
snapshot, not as changes to an empty table.

## Why is this bad?
Linting migrations that already ran hides the hazards of the ones that have
not: a table created earlier in the range looks new and empty, so a foreign key
validation, a plain CREATE INDEX or a SET NOT NULL on a 500k-row table is
reported as harmless. And on the database itself the statement fails with
`relation ... already exists`.

## Example
```sql
-- the database already ran this revision; invoices holds 500k rows
CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint);
ALTER TABLE invoices ADD FOREIGN KEY (account_id) REFERENCES payment_accounts (id);
```

## Use instead
```sql
-- lint only what the database has not run: the FK, sized by the snapshot
ALTER TABLE invoices ADD FOREIGN KEY (account_id) REFERENCES payment_accounts (id) NOT VALID;
```
For Alembic, regenerate the snapshot with `pgwarden stats dump` (it records
`alembic_version`, and `lint --alembic --stats` then skips the applied
revisions) or pass `--range REV:head`; `--unapplied --database-url` reads it
live. For SQL files, lint only the files that have not run.

## Fix safety
No fix: the range is wrong, not the statement.

## References
https://www.postgresql.org/docs/current/sql-createtable.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.plan import Step
from pgwarden.rules._sql import size_words
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("CreateStmt")
    if body is None or ctx.snapshot is None:
        return
    for table in step.effects.creates:
        if not ctx.shown_existing(table, step):
            continue
        fails = "" if body.get("if_not_exists") else ", and here it fails: relation already exists"
        yield Hit(
            message=f"creates table {table}, but the snapshot shows it exists: the range "
            f"includes applied revisions (migrations the database already ran){fails}; "
            f"later statements on {table} are judged by its size in the snapshot"
            f"{size_words(ctx, table)}",
            help="lint only what the database has not run: `pgwarden stats dump` records "
            "alembic_version so `lint --alembic --stats` skips applied revisions; or pass "
            "--range REV:head, --unapplied, or only the SQL files not yet applied",
        )


RULE = Rule(
    code="PW402",
    name="created-table-already-exists",
    summary="CREATE TABLE of a table the stats snapshot shows existing: applied migrations "
    "in the linted range",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt"}),
)
