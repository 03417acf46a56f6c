"""Declares a column `json` instead of `jsonb`.

## What it does
Flags columns declared `json` in `CREATE TABLE`, `ADD COLUMN` and `ALTER
COLUMN ... TYPE`.
Columns of a temporary table (`CREATE TEMP TABLE`) are not flagged: the table
is gone at the end of the session.

## Why is this bad?
`json` stores the text as given and parses it on every access. It has no
equality operator, so `SELECT DISTINCT`, `GROUP BY`, `UNION` and unique
indexes over it fail, and it cannot be indexed with GIN. `jsonb` stores a
parsed form that supports all of that. Keep `json` only when the exact text
(key order, duplicate keys, whitespace) must be preserved.

## Example
```sql
CREATE TABLE webhooks (id bigint PRIMARY KEY, payload json);
```

## Use instead
```sql
CREATE TABLE webhooks (id bigint PRIMARY KEY, payload jsonb);
```
Alembic: `postgresql.JSONB`. Django: `JSONField` is already `jsonb` on
PostgreSQL.

## Fix safety
No automatic fix: code may rely on key order or duplicate keys.

## References
https://www.postgresql.org/docs/current/datatype-json.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import column_types, ident
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, where, (base, _, _) in column_types(step):
        if base != "json":
            continue
        col = ident(column)
        yield Hit(
            message=f"{where} declares {table}.{col} as json: no equality (DISTINCT, GROUP BY, "
            "UNION fail), no GIN index, re-parsed on every access",
            help="use jsonb",
            severity=Severity.NOTE,
        )


RULE = Rule(
    code="PW306",
    name="json-column",
    summary="json has no equality operator and no GIN indexing; prefer jsonb",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn", "AT_AlterColumnType"}),
)
