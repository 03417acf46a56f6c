"""Declares a column `char(n)` / `character(n)`.

## What it does
Flags columns declared `char(n)`, `character(n)` or bare `char` (which is
`char(1)`) in `CREATE TABLE`, `ADD COLUMN` and `ALTER COLUMN ... TYPE`. The
internal one-byte type `"char"` is not flagged.
Columns of a temporary table (`CREATE TEMP TABLE`) are not flagged: the table
is gone at the end of the session.

## Why is this bad?
`char(n)` pads values with spaces to `n` characters, ignores trailing spaces
when comparing, and drops them when casting to text, which surprises code
and breaks `LIKE` and joins against `text` columns. It is not faster or
smaller than `text`; it only looks fixed-width.

## Example
```sql
CREATE TABLE payouts (id bigint PRIMARY KEY, currency char(3));
```

## Use instead
```sql
CREATE TABLE payouts (
    id bigint PRIMARY KEY,
    currency text CONSTRAINT payouts_currency_length CHECK (length(currency) = 3)
);
```
Alembic: `sa.Text()` plus `sa.CheckConstraint`. Django: `TextField` plus a
`CheckConstraint`.

## Fix safety
No automatic fix: stored values carry their padding.

## References
https://wiki.postgresql.org/wiki/Don%27t_Do_This#Don.27t_use_char.28n.29
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import column_types, ident
from pgwarden.rules.base import Hit, LintContext, Rule


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, column, where, (base, mods, _) in column_types(step):
        if base != "bpchar":
            continue
        col = ident(column)
        yield Hit(
            message=f"{where} declares {table}.{col} as char({mods[0] if mods else 1}): values "
            "are space-padded and compare ignoring trailing spaces",
            help="use text (with a CHECK on length if the width matters)",
            severity=Severity.NOTE,
        )


RULE = Rule(
    code="PW304",
    name="char-column",
    summary="char(n) pads with spaces and is no faster than text",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn", "AT_AlterColumnType"}),
)
