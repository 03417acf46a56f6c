"""Declares a `serial` / `bigserial` column instead of an identity column.

## What it does
Flags columns declared `smallserial`, `serial` or `bigserial` in `CREATE
TABLE` and `ADD COLUMN` (adding one to an existing table also rewrites it:
see PW104).
Columns of a temporary table (`CREATE TEMP TABLE`) are not flagged: the table
is gone at the end of the session.

## Why is this bad?
`serial` is shorthand for an integer column with a `nextval()` default and a
separately owned sequence. The sequence's permissions, ownership and value
do not follow the table (`CREATE TABLE ... LIKE`, dumps of single tables,
grants), and nothing stops code from inserting explicit ids that later
collide with the sequence. Identity columns are the SQL-standard form that
ties the sequence to the column and can refuse explicit values.

## Example
```sql
CREATE TABLE payouts (id bigserial PRIMARY KEY, amount_cents bigint);
```

## Use instead
```sql
CREATE TABLE payouts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount_cents bigint);
```
Alembic: `sa.Column("id", sa.BigInteger, sa.Identity(always=True),
primary_key=True)`. Django 4.1+ creates identity columns for `AutoField`
and `BigAutoField` on PostgreSQL.

## Fix safety
No automatic fix.

## References
https://wiki.postgresql.org/wiki/Don%27t_Do_This#Don.27t_use_serial
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import column_types, ident
from pgwarden.rules.base import Hit, LintContext, Rule

_SERIAL = {
    "smallserial": "smallint",
    "serial2": "smallint",
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
}


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, where, (base, _, _) in column_types(step):
        if base not in _SERIAL:
            continue
        col = ident(column)
        yield Hit(
            message=f"{where} declares {table}.{col} as {base}: a loose sequence whose "
            "permissions and ownership do not follow the table, and explicit ids can collide",
            help="use bigint GENERATED ALWAYS AS IDENTITY (a smaller integer can run out)",
            severity=Severity.NOTE,
        )


RULE = Rule(
    code="PW305",
    name="serial-column",
    summary="serial columns use a loose sequence; prefer identity columns",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn", "AT_AlterColumnType"}),
)
