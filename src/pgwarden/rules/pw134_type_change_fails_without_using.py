"""Changes a column's type with no USING where PostgreSQL has no cast to apply.

## What it does
Flags `ALTER TABLE ... ALTER COLUMN c TYPE t` without `USING` when the
column's current type is known (the catalog of `--database-url` / `--stats`,
a column the plan added, or the migration's own word: Alembic's
`existing_type`, Django's old field) and is a string type (`text`,
`varchar`, `char`) while the new type is a number, `boolean`, `uuid`,
`json`/`jsonb`, a date or time type, `bytea` or a network type. PostgreSQL
converts from a string type only with an explicit cast, so it refuses the
statement. The table checked against `pg_cast` on every supported server
version is in the module; other pairs are not flagged.

## Why is this bad?
The statement fails at deploy time: `ERROR: column "c" cannot be cast
automatically to type integer` (`HINT: You might need to specify "USING
c::integer"`). The migration rolls back, often after slow statements already
ran. Alembic's autogenerate writes such type changes without `USING`.

## Example
```sql
ALTER TABLE invoices ALTER COLUMN status TYPE smallint;  -- status holds codes, as text
```

## Use instead
```sql
ALTER TABLE invoices ALTER COLUMN status TYPE smallint USING status::smallint;
```
Say how to convert. The change still rewrites the table under ACCESS
EXCLUSIVE (PW104): on a large table, add a column of the new type and
backfill it instead. Alembic: `op.alter_column(..., postgresql_using=
"status::smallint")`.

## Fix safety
No mechanical fix: only the author knows how each value converts.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DATA-TYPE
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, table_of
from pgwarden.rules.base import Hit, LintContext, Rule

# String types: PostgreSQL converts from them only by an explicit (I/O) cast.
STRINGS = frozenset({"text", "varchar", "bpchar"})
# Targets with no implicit or assignment cast from any of STRINGS (pg_cast checked on
# 15-18 by tests/rules/test_pw134_casts.py).
NO_CAST_FROM_STRING = frozenset(
    {
        "int2", "int4", "int8", "numeric", "float4", "float8", "bool", "uuid", "json",
        "jsonb", "date", "timestamp", "timestamptz", "time", "timetz", "interval", "bytea",
        "inet", "cidr", "macaddr",
    }
)  # fmt: skip


# How SQL (and the server's error) writes the model's internal names.
_SQL_NAMES = {
    "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real",
    "float8": "double precision", "bool": "boolean", "bpchar": "char", "varchar": "varchar",
}  # fmt: skip


def _base(spelled: str) -> str:
    """The base type of the model's spelling: varchar(100) -> varchar."""
    return spelled.split("(", 1)[0]


def _sql(spelled: str) -> str:
    """The model's spelling as SQL writes it: int4 -> integer, varchar(10) stays."""
    base = _base(spelled)
    return _SQL_NAMES.get(base, base) + spelled[len(base) :]


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    changes = {(c.table, c.column): c for c in step.effects.type_changes}
    if not changes:
        return
    table = table_of(step)
    for sub, cmd in alter_cmds(step):
        if sub != "AT_AlterColumnType":
            continue
        col = cmd.get("def", {}).get("ColumnDef", {})
        if col.get("raw_default") is not None:  # USING given
            continue
        name = str(cmd.get("name"))
        change = changes.get((table or "", name)) or next(
            (c for c in changes.values() if c.column == name), None
        )
        if change is None:
            continue
        old, new = _base(change.old), _base(change.new)
        if old not in STRINGS or new not in NO_CAST_FROM_STRING:
            continue
        was, to = _sql(change.old), _sql(change.new)
        yield Hit(
            message=f"changes {change.table}.{name} from {was} to {to} with no USING: "
            f"PostgreSQL has no automatic cast from {_sql(old)}, so the statement fails at "
            f'deploy ("column cannot be cast automatically to type {_sql(new)}")',
            help=f"say how to convert: ... TYPE {to} USING {name}::{to} "
            "(and mind PW104: the change rewrites the table)",
            severity=Severity.ERROR,
        )


RULE = Rule(
    code="PW134",
    name="type-change-fails-without-using",
    summary="a type change from a string type without USING fails: there is no automatic cast",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AlterColumnType"}),
)
