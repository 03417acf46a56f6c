"""Runs SQL inside a DO block or procedure that pgwarden cannot see.

## What it does
Flags `EXECUTE` in a DO block (or in a procedure the migration creates and
CALLs) whose SQL is built at run time, e.g. `EXECUTE format('ALTER TABLE %I
...', name)` or a string glued from variables, and a body the PL/pgSQL parser
rejects. pgwarden analyses every other statement of a body like a top-level
one (locks, scans, rewrites, destruction), and `EXECUTE` of a constant string
too; this SQL it cannot know before it runs.

Also flags `SELECT f('<sql>')` where the string holds statements other than
queries and `f` is neither built in nor created by the linted files: projects
that run each migration through a helper (`create function run_sql(text) ...
begin execute $1; end`) hide the whole migration in that string. When the
helper's `CREATE FUNCTION` is linted too, the string is analysed instead.

And with `--alembic`, a revision that cannot be rendered offline (it reads
data or inspects the connection) is this finding at its file: lint did not
see its SQL (`pgwarden apply --alembic` runs it online).

## Why is this bad?
Lint passing says nothing about what this statement locks, rewrites or
destroys: an `ALTER TABLE` built by `format()` can take ACCESS EXCLUSIVE and
rewrite a large table, and the whole DO block holds every lock to its end.
A green CI run would be a guess.

## Example
```sql
DO $$
BEGIN
  EXECUTE format('ALTER TABLE %I ADD COLUMN note text NOT NULL DEFAULT %L', 'invoices', '');
END
$$;
```

## Use instead
```sql
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS note text NOT NULL DEFAULT '';
```
Write the statement out, with `IF NOT EXISTS` / `IF EXISTS` instead of an
existence check, so pgwarden (and a reviewer) can see it. When the SQL must
be generated (one statement per tenant schema), generate the migration file
instead, or check one rendered statement with `pgwarden explain "..."` and
then silence this finding with `-- pgwarden: ignore PW133 <reason>`.

## Fix safety
No mechanical fix: the SQL is only known at run time.

## References
https://www.postgresql.org/docs/current/plpgsql-statements.html#PLPGSQL-STATEMENTS-EXECUTING-DYN
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules.base import Hit, LintContext, Rule

_MAX_TEXT = 80


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    del ctx
    for part in step.unanalysed:
        text = " ".join(part.text.split())
        if len(text) > _MAX_TEXT:
            text = text[: _MAX_TEXT - 1] + "…"
        yield Hit(
            message=f"`{text}` at line {part.location.line}, column {part.location.column} "
            f"is not analysed: {part.why}; what it locks, rewrites or destroys is unknown",
            help="write the statement out (IF NOT EXISTS instead of an existence check) so it "
            "can be analysed, or check the SQL it produces with pgwarden explain and add "
            "-- pgwarden: ignore PW133 <reason>",
            severity=Severity.WARNING,
            location=part.location,  # the EXECUTE inside the block, for CI annotations
        )


RULE = Rule(
    code="PW133",
    name="dynamic-sql-not-analysed",
    summary="EXECUTE of SQL built at run time in a DO block or procedure is not analysed",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DoStmt", "CallStmt", "SelectStmt"}),
)
