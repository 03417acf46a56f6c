"""Declares a column `timestamp` (without time zone).

## What it does
Flags columns declared `timestamp` / `timestamp without time zone` in
`CREATE TABLE`, `ADD COLUMN` and `ALTER COLUMN ... TYPE`.
Columns of a temporary table (`CREATE TEMP TABLE`) are not flagged: the table
is gone at the end of the session.

## Why is this bad?
A `timestamp` is a wall-clock reading with no zone: the same value means
different instants to servers or clients in different zones, and around
daylight-saving changes some readings happen twice. `timestamptz` stores an
instant (as UTC) and converts on the way out, in the same 8 bytes. Changing
the type later rewrites the table unless the session time zone is UTC.

## Example
```sql
CREATE TABLE payouts (id bigint PRIMARY KEY, paid_at timestamp);
```

## Use instead
```sql
CREATE TABLE payouts (id bigint PRIMARY KEY, paid_at timestamptz);
```
Alembic: `sa.DateTime(timezone=True)`. Django: `USE_TZ = True` (the
default) makes `DateTimeField` a `timestamptz`.

## Fix safety
No automatic fix: code that reads the column may rely on naive values.

## References
https://wiki.postgresql.org/wiki/Don%27t_Do_This#Don.27t_use_timestamp_.28without_time_zone.29
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import column_types, ident
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, where, (base, _, _) in column_types(step):
        if base != "timestamp":
            continue
        col = ident(column)
        yield Hit(
            message=f"{where} declares {table}.{col} as timestamp without time zone: the "
            "value carries no zone, so it means different instants to different clients",
            help="use timestamptz (same size, stores an instant)",
            severity=Severity.NOTE,
        )


RULE = Rule(
    code="PW302",
    name="timestamp-without-time-zone",
    summary="timestamp without time zone stores no zone; prefer timestamptz",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn", "AT_AlterColumnType"}),
)
