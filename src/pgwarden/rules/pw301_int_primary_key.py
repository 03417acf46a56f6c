"""Declares a primary key of type integer (or smallint), which can run out.

## What it does
Flags a primary-key column declared `integer`, `smallint`, `serial` or
`smallserial` in `CREATE TABLE` or `ALTER TABLE ... ADD COLUMN`. Plain
integer columns that are not keys (counts, amounts) are not flagged, nor are
generated columns, nor the columns of a composite key that no sequence fills
(serial, identity, `DEFAULT nextval(...)`): a join table's references run out
only where the referenced table's key does, and that key is flagged there.
Columns of a temporary table (`CREATE TEMP TABLE`) are not flagged: the table
is gone at the end of the session.

## Why is this bad?
An `integer` key stops at 2,147,483,647: inserts start failing when the
sequence gets there, and sequences also burn values on rolled-back inserts.
Widening the key later rewrites the table and every index under ACCESS
EXCLUSIVE, and every foreign key that references it has to change too. A
`bigint` costs four more bytes per row.

## Example
```sql
CREATE TABLE payouts (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount_cents bigint);
```

## Use instead
```sql
CREATE TABLE payouts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount_cents bigint);
```
Alembic: `sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True)`.
Django: `DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"` (or
`BigAutoField` on the model).

## Fix safety
No automatic fix: referencing columns in other tables should be bigint too.

## References
https://www.postgresql.org/docs/current/datatype-numeric.html#DATATYPE-INT
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.nodes import ColumnDef
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, ident, regclass, strings, type_of
from pgwarden.rules.base import Hit, LintContext, Rule

_SMALL = {
    "int4": "integer",
    "int2": "smallint",
    "serial": "serial",
    "serial4": "serial",
    "smallserial": "smallserial",
    "serial2": "smallserial",
}

_LIMIT = {False: "2,147,483,647", True: "32,767"}


def _columns(step: Step) -> Iterator[tuple[str, ColumnDef, bool]]:
    """(table, ColumnDef, is a primary key) of every column the step declares."""
    create = step.tree.get("CreateStmt")
    alter = step.tree.get("AlterTableStmt")
    if create is not None:
        if create.get("relation", {}).get("relpersistence") == "t":
            return  # a temporary table: gone at the end of the session
        table = regclass(create.get("relation"))
        elts = create.get("tableElts") or ()
        keys = {
            k
            for e in elts
            if e.get("Constraint", {}).get("contype") == "CONSTR_PRIMARY"
            for k in strings(e["Constraint"].get("keys"))
        }
        for e in elts:
            col = e.get("ColumnDef")
            if not col:
                continue
            if col.get("colname") in keys:
                # in a composite key, only a column a sequence fills runs out by itself
                yield table, col, len(keys) == 1 or _sequenced(col)
            else:
                yield table, col, _inline_pk(col)
    elif alter is not None:
        table = regclass(alter.get("relation"))
        for subtype, cmd in alter_cmds(step):
            col = cmd.get("def", {}).get("ColumnDef") if subtype == "AT_AddColumn" else None
            if col:
                yield table, col, _inline_pk(col)


def _sequenced(col: ColumnDef) -> bool:
    """Whether a sequence fills the column: serial, identity, or DEFAULT nextval(...)."""
    typ = type_of(col.get("typeName") or {})[0]
    if typ.startswith(("serial", "smallserial")):
        return True
    for c in col.get("constraints") or ():
        con = c.get("Constraint", {})
        if con.get("contype") == "CONSTR_IDENTITY":
            return True
        if con.get("contype") == "CONSTR_DEFAULT" and "nextval" in str(con.get("raw_expr")):
            return True
    return False


def _generated(col: ColumnDef) -> bool:
    """A generated column (GENERATED ALWAYS AS (expr) STORED): computed, never counted up."""
    return any(
        c.get("Constraint", {}).get("contype") == "CONSTR_GENERATED"
        for c in col.get("constraints") or ()
    )


def _inline_pk(col: ColumnDef) -> bool:
    return any(
        c.get("Constraint", {}).get("contype") == "CONSTR_PRIMARY"
        for c in col.get("constraints") or ()
    )


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for table, col, is_pk in _columns(step):
        typ = type_of(col.get("typeName") or {})
        if not is_pk or typ[2] or typ[0] not in _SMALL or _generated(col):
            continue
        name = ident(str(col.get("colname")))
        yield Hit(
            message=f"primary key {table}.{name} is {_SMALL[typ[0]]}: it runs out "
            f"at {_LIMIT[typ[0] in ('int2', 'smallserial', 'serial2')]}, and widening it later "
            "rewrites the table and every referencing foreign key",
            help="declare it bigint (bigint GENERATED ALWAYS AS IDENTITY)",
            severity=Severity.NOTE,
        )


RULE = Rule(
    code="PW301",
    name="int-primary-key",
    summary="an integer primary key can run out; prefer bigint",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_AddColumn"}),
)
