"""Declares a column `varchar(n)` with a length limit.

## What it does
Flags columns declared `varchar(n)` / `character varying(n)` in `CREATE
TABLE`, `ADD COLUMN` and `ALTER COLUMN ... TYPE`. `varchar` without a
length is not flagged (it is `text` under another name).
Columns of a temporary table (`CREATE TEMP TABLE`) are not flagged: the table
is gone at the end of the session.

## Why is this bad?
In PostgreSQL `varchar(n)` is stored exactly like `text`; the limit is the
only difference, and it is the hard one to change: lowering it rewrites the
table under ACCESS EXCLUSIVE, and the limit usually mirrors a business rule
that changes. A `CHECK (length(c) <= n)` enforces the same rule and can be
replaced with `NOT VALID` + `VALIDATE` without blocking anyone.

## Example
```sql
CREATE TABLE payouts (id bigint PRIMARY KEY, reference varchar(20));
```

## Use instead
```sql
CREATE TABLE payouts (
    id bigint PRIMARY KEY,
    reference text CONSTRAINT payouts_reference_length CHECK (length(reference) <= 20)
);
```
Alembic: `sa.Text()` plus `sa.CheckConstraint`. Django: `TextField` plus a
`CheckConstraint` in `Meta.constraints` (a `CharField(max_length=...)`
becomes `varchar(n)`).

## Fix safety
No automatic fix.

## References
https://wiki.postgresql.org/wiki/Don%27t_Do_This#Don.27t_use_varchar.28n.29_by_default
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import column_types, ident
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, where, (base, mods, _) in column_types(step):
        if base != "varchar" or not mods:
            continue
        col = ident(column)
        yield Hit(
            message=f"{where} declares {table}.{col} as varchar({mods[0]}): stored like text, "
            "but the limit can only be lowered by rewriting the table",
            help=f"use text with CHECK (length({col}) <= {mods[0]}), which can be changed "
            "without a rewrite",
            severity=Severity.NOTE,
        )


RULE = Rule(
    code="PW303",
    name="varchar-length-limit",
    summary="varchar(n) is text with a limit that is costly to change; prefer text + CHECK",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn", "AT_AlterColumnType"}),
)
