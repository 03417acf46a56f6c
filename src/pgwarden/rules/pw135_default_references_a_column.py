"""A column DEFAULT that names a column, which PostgreSQL rejects.

## What it does
Flags a `DEFAULT` in `CREATE TABLE`, `ALTER TABLE ... ADD COLUMN` or `ALTER
COLUMN ... SET DEFAULT` whose expression reads a column: most often a string
written in double quotes (`DEFAULT "disabled"`, the MySQL habit), which SQL
reads as the column named `disabled`. Generated columns (`GENERATED ALWAYS AS
(...)`), which may read other columns, are not defaults and are not flagged.

## Why is this bad?
The statement always fails: `ERROR: cannot use column reference in DEFAULT
expression`. The migration stops at deploy time, after whatever ran before it
in the same deploy.

## Example
```sql
ALTER TABLE safekeepers ADD COLUMN scheduling_policy varchar NOT NULL DEFAULT "disabled";
```

## Use instead
```sql
ALTER TABLE safekeepers ADD COLUMN scheduling_policy varchar NOT NULL DEFAULT 'disabled';
```
A string constant takes single quotes.

## Fix safety
No mechanical fix: whether a string was meant is the author's to say.

## References
https://www.postgresql.org/docs/current/sql-createtable.html#SQL-CREATETABLE-PARMS-DEFAULT
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.nodes import Node, walk
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, ident, strings
from pgwarden.rules.base import Hit, LintContext, Rule

CODE = "PW135"


def _defaults(step: Step) -> Iterator[tuple[str, Node]]:
    """(column, DEFAULT expression) of every column default the step writes."""
    create = step.tree.get("CreateStmt")
    elts = create.get("tableElts") or () if create is not None else ()
    cols = [e["ColumnDef"] for e in elts if "ColumnDef" in e]
    for subtype, cmd in alter_cmds(step):
        if subtype == "AT_AddColumn" and "ColumnDef" in cmd.get("def", {}):
            cols.append(cmd["def"]["ColumnDef"])
        elif subtype == "AT_ColumnDefault" and cmd.get("def"):
            yield str(cmd.get("name")), cmd["def"]
    for col in cols:
        for con in col.get("constraints") or ():
            default = con.get("Constraint", {})
            if default.get("contype") == "CONSTR_DEFAULT" and default.get("raw_expr"):
                yield str(col.get("colname")), default["raw_expr"]


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    del ctx
    for column, expr in _defaults(step):
        named = [v for k, v in walk(expr) if k == "ColumnRef" and isinstance(v, dict)]
        if not named:
            continue
        ref = ".".join(strings(named[0].get("fields"))) or "a column"
        shown = ".".join(ident(part) for part in ref.split("."))
        yield Hit(
            message=f"the DEFAULT of {ident(column)} reads the column {shown} (a double-"
            f"quoted word is a column name, not a string): PostgreSQL rejects it (cannot use "
            "column reference in DEFAULT expression) and the migration fails at deploy time",
            help=f"write a string constant in single quotes: DEFAULT '{ref}'",
            severity=Severity.ERROR,
        )


RULE = Rule(
    code=CODE,
    name="default-references-a-column",
    summary="a column DEFAULT that names a column (a double-quoted string) always fails",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"CreateStmt", "AlterTableStmt"}),
)
