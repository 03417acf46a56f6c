"""Changes a column's type with no USING where PostgreSQL has no cast to apply.

## What it does
Flags `ALTER TABLE ... ALTER COLUMN c TYPE t` without `USING` when the
column's current type is known (the catalog of `--database-url` / `--stats`,
a column the plan added, or the migration's own word: Alembic's
`existing_type`, Django's old field) and PostgreSQL has no implicit or
assignment cast from it to the new type: a string type (`text`, `varchar`,
`char`) to a number, `boolean`, `uuid`, `json`, a date or time type, `bytea`
or a network type; `boolean` to or from `integer`; a number to a date or time;
`uuid` to anything but a string; and so on. Every built-in type converts to a
string type without `USING`. The table of which built-in types convert to
which, measured by running the statement on every supported server version,
is in the module. Enums count too (those of the catalog, those a
`CREATE TYPE ... AS ENUM` of the plan made, and a native `sa.Enum` an
Alembic `alter_column` names): no type converts to an enum
without `USING`, whatever the column's current type, and an enum converts
only to a string type. Other types (extension types, composites, ranges) are
not flagged.

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
from typing import cast

from pgwarden.analysis.inplan import sql_type
from pgwarden.analysis.nodes import type_of
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, dotted, ident, table_of
from pgwarden.rules.base import Hit, LintContext, Rule

CODE = "PW134"

# String types: every built-in type converts to them without USING (an I/O cast that
# PostgreSQL treats as an assignment cast); from them only by an explicit cast.
STRINGS = frozenset({"text", "varchar", "bpchar"})
# For each built-in type, the other non-string types it converts to with no USING (an
# implicit or assignment cast, or binary coercion). Measured on 15-18 by running
# ALTER COLUMN ... TYPE for every pair of BUILT_IN (tests/rules/test_pw134_casts.py).
CONVERTS_TO: dict[str, frozenset[str]] = {
    "int2": frozenset({"int4", "int8", "numeric", "float4", "float8"}),
    "int4": frozenset({"int2", "int8", "numeric", "float4", "float8", "money"}),
    "int8": frozenset({"int2", "int4", "numeric", "float4", "float8", "money"}),
    "numeric": frozenset({"int2", "int4", "int8", "float4", "float8", "money"}),
    "float4": frozenset({"int2", "int4", "int8", "numeric", "float8"}),
    "float8": frozenset({"int2", "int4", "int8", "numeric", "float4"}),
    "money": frozenset({"numeric"}),
    "date": frozenset({"timestamp", "timestamptz"}),
    "timestamp": frozenset({"date", "time", "timestamptz"}),
    "timestamptz": frozenset({"date", "time", "timestamp", "timetz"}),
    "time": frozenset({"interval", "timetz"}),
    "timetz": frozenset({"time"}),
    "interval": frozenset({"time"}),
    "json": frozenset({"jsonb"}),
    "jsonb": frozenset({"json"}),
    "inet": frozenset({"cidr"}),
    "cidr": frozenset({"inet"}),
    "macaddr": frozenset({"macaddr8"}),
    "macaddr8": frozenset({"macaddr"}),
    "bit": frozenset({"varbit"}),
    "varbit": frozenset({"bit"}),
}
# The types the table covers: a change between two of them is flagged when the table
# has no conversion; a type outside it (an enum, an extension's) never is.
BUILT_IN = frozenset(CONVERTS_TO) | STRINGS | {"bool", "uuid", "bytea", "xml", "tsvector"}
# Pairs of BUILT_IN (not from a string type) that `USING c::new` converts: an explicit
# cast exists on 15-18. From a string type an explicit cast always exists; between other
# flagged pairs there is none (18 adds bytea <-> smallint/integer/bigint).
EXPLICIT_CASTS = frozenset(
    {
        ("bool", "int4"), ("int4", "bool"), ("bit", "int4"), ("bit", "int8"), ("int4", "bit"),
        ("int8", "bit"), ("jsonb", "bool"), ("jsonb", "int2"), ("jsonb", "int4"),
        ("jsonb", "int8"), ("jsonb", "numeric"), ("jsonb", "float4"), ("jsonb", "float8"),
    }
)  # fmt: skip


def fails_without_using(old: str, new: str) -> bool:
    """Whether ALTER COLUMN ... TYPE from base type `old` to `new` with no USING is
    refused (both in BUILT_IN; other types are not judged)."""
    if old == new or old not in BUILT_IN or new not in BUILT_IN or new in STRINGS:
        return False
    return new not in CONVERTS_TO.get(old, frozenset())


# How the server's error names a type where SQL's usual spelling differs (format_type).
_SERVER_NAMES = {
    "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
    "time": "time without time zone", "timetz": "time with time zone",
}  # fmt: skip


def _base(spelled: str) -> str:
    """The base type of the model's spelling: varchar(100) -> varchar."""
    return spelled.split("(", 1)[0]


def _enums(ctx: LintContext) -> set[str]:
    """Enum types of the catalog, those the migration framework names as enums, and those
    the plan created so far, by name (lower case, without schema)."""
    enums = cast("set[str] | None", ctx.state.get(CODE))
    if enums is None:
        catalog = ctx.snapshot.catalog if ctx.snapshot is not None else None
        enums = {name.lower() for _, name in catalog.enums} if catalog is not None else set()
        enums.update(name for text in ctx.plan.texts for name in text.enums)
        ctx.state[CODE] = enums
    return enums


def observe(step: Step, ctx: LintContext) -> None:
    """Remember the enum types CREATE TYPE ... AS ENUM made."""
    create = step.tree.get("CreateEnumStmt")
    if create is not None:
        _enums(ctx).add(dotted(create.get("typeName")).rpartition(".")[2].lower())


def _problem(old: str | None, new: str, enums: set[str]) -> str | None:
    """Why ALTER COLUMN ... TYPE from `old` (None: not known) to `new` (base types, the
    model's spelling) with no USING fails, or None when it runs or is not judged."""
    if old is not None and old.rpartition(".")[2].strip('"').lower() in enums:
        old = old.rpartition(".")[2].strip('"').lower()  # "app.mood": an enum of the catalog
    if new in enums:  # no type converts to an enum on its own; the column is not one yet
        source = f"from {sql_type(old)} " if old is not None else ""
        return None if old == new else f"PostgreSQL has no automatic cast {source}to an enum"
    if old is None:
        return None
    if old in enums:
        if new in STRINGS or old == new:
            return None
        return f"PostgreSQL has no automatic cast from an enum to {sql_type(new)}"
    if fails_without_using(old, new):
        return f"PostgreSQL has no automatic cast from {sql_type(old)} to {sql_type(new)}"
    return None


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    changes = {(c.table, c.column): c for c in step.effects.type_changes}
    enums = _enums(ctx)
    if not changes and not enums:
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
        base, _, array = type_of(col.get("typeName", {}))
        if array:
            continue
        old = _base(change.old) if change is not None else None
        why = _problem(old, base, enums)
        if why is None:
            continue
        to = sql_type(change.new) if change is not None else base
        was = f"from {sql_type(change.old)} " if change is not None else ""
        target = f"{base} (an enum)" if base in enums else _SERVER_NAMES.get(base, sql_type(base))
        if old is not None and (old in STRINGS or (old, base) in EXPLICIT_CASTS):
            how = f"say how to convert: ... TYPE {to} USING {ident(name)}::{to}"
        elif base in enums:
            how = f"say how to convert: ... TYPE {to} USING {ident(name)}::text::{to}"
        else:
            how = (
                f"there is no cast from {sql_type(old or '')} to {sql_type(base)} at all: write "
                f"the conversion as an expression of {ident(name)} in USING"
            )
        yield Hit(
            message=f"changes {table or (change.table if change else '?')}.{ident(name)} {was}to "
            f'{to} with no USING: {why}, so the statement fails at deploy ("column cannot '
            f'be cast automatically to type {target.removesuffix(" (an enum)")}")',
            help=f"{how} (and mind PW104: the change rewrites the table)",
            severity=Severity.ERROR,
        )


RULE = Rule(
    code=CODE,
    name="type-change-fails-without-using",
    summary="a type change without USING fails where PostgreSQL has no automatic cast",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AlterColumnType"}),
    observe=observe,
    observe_kinds=frozenset({"CreateEnumStmt"}),
)
