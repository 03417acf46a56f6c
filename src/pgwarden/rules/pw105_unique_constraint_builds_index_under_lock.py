"""Adds a UNIQUE or PRIMARY KEY constraint that builds its index under ACCESS EXCLUSIVE.

## What it does
Flags `ALTER TABLE ... ADD [CONSTRAINT c] UNIQUE (...)` and `ADD PRIMARY KEY
(...)`, and a new column declared `UNIQUE` or `PRIMARY KEY`, on a table that
existed before the migration. `ADD CONSTRAINT ... USING INDEX` is not
flagged: the index already exists.

## Why is this bad?
The constraint needs a unique index, and ALTER TABLE builds it while holding
ACCESS EXCLUSIVE on the table: no reads, no writes until every row has been
read and sorted. A new `UNIQUE` column is no cheaper: the index still covers
every existing row. If the data has duplicates, the build fails only at the
end, after blocking everyone.

## Example
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_reference_key UNIQUE (reference);
```

## Use instead
```sql
CREATE UNIQUE INDEX CONCURRENTLY invoices_reference_key ON invoices (reference);
-- then, once the index is valid (a failed build leaves an INVALID index: drop it and retry):
ALTER TABLE invoices ADD CONSTRAINT invoices_reference_key
    UNIQUE USING INDEX invoices_reference_key;
```
The concurrent build takes SHARE UPDATE EXCLUSIVE (reads and writes go on)
and must run outside a transaction block; attaching the finished index is a
catalog change. For a primary key, make the columns NOT NULL first (see
PW103) so `ADD PRIMARY KEY USING INDEX` does not scan. Alembic:
`op.create_index(..., unique=True, postgresql_concurrently=True)` inside
`autocommit_block()`, then `op.execute("ALTER TABLE ... USING INDEX ...")`.
Django: `AddIndexConcurrently` with a unique index in a migration with
`atomic = False`, then `RunSQL` for the constraint (with
`SeparateDatabaseAndState` to record the `UniqueConstraint`).

## Fix safety
Safe: the constraint is the same. Between the two statements the index
already enforces uniqueness.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import Constraint
from pgwarden.findings import Fix, FixStatement, Placement
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, how_long, ident, strings, table_of
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_KINDS = {"CONSTR_UNIQUE": "UNIQUE", "CONSTR_PRIMARY": "PRIMARY KEY"}


def _constraints(step: Step) -> Iterator[tuple[Constraint, list[str], bool]]:
    """(constraint, columns, inline on a new column) of each index-building key constraint."""
    for subtype, cmd in alter_cmds(step):
        if subtype == "AT_AddConstraint":
            con = cmd.get("def", {}).get("Constraint", {})
            if con.get("contype") in _KINDS and not con.get("indexname"):
                yield con, strings(con.get("keys")), False
        elif subtype == "AT_AddColumn":
            col = cmd.get("def", {}).get("ColumnDef", {})
            for c in col.get("constraints") or ():
                con = c.get("Constraint", {})
                if con.get("contype") in _KINDS:
                    yield con, [str(col.get("colname"))], True


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    table = table_of(step)
    if table is None:
        return
    for con, cols, inline in _constraints(step):
        est = ctx.duration(table, kind="index")
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        kind = _KINDS[con["contype"]]
        mode = step.effects.strongest().get(table, LockMode.ACCESS_EXCLUSIVE)
        what = (
            f"the new column {ident(cols[0])} declared {kind}"
            if inline
            else f"{kind} ({', '.join(map(ident, cols))})"
        )
        yield Hit(
            message=f"builds the unique index for {what} by reading and sorting all of {table} "
            f"({how_long(est)}) while holding {describe_lock(mode, table)}; {table}: {judged.size}",
            help="CREATE UNIQUE INDEX CONCURRENTLY first (outside a transaction block), then "
            f"ADD CONSTRAINT ... {kind} USING INDEX",
            severity=judged.severity,
            fix=None if inline else fix(step, table, con, cols),
        )


def fix(step: Step, table: str, con: Constraint, cols: list[str]) -> Fix | None:
    """Concurrent unique index, then the constraint over it; only for a plain column list."""
    plain = not any(con.get(k) for k in ("including", "options", "indexspace", "deferrable"))
    if len(step.body.get("cmds", ())) != 1 or not cols or not plain:
        return None
    kind = _KINDS[con["contype"]]
    base = table.rsplit(".", 1)[-1].strip('"')
    name = con.get("conname") or (
        f"{base}_pkey" if kind == "PRIMARY KEY" else f"{base}_{'_'.join(cols)}_key"
    )
    nulls = " NULLS NOT DISTINCT" if con.get("nulls_not_distinct") else ""
    column_list = ", ".join(ident(c) for c in cols)
    index = ident(name)
    return Fix(
        (
            FixStatement(
                f"CREATE UNIQUE INDEX CONCURRENTLY {index} ON {table} ({column_list}){nulls};",
                Placement.BEFORE,
            ),
            FixStatement(
                f"ALTER TABLE {table} ADD CONSTRAINT {index} {kind} USING INDEX {index};",
                Placement.IN_PLACE,
                "once the index is valid:",
            ),
        )
    )


RULE = Rule(
    code="PW105",
    name="unique-constraint-builds-index-under-lock",
    summary="ADD UNIQUE / PRIMARY KEY builds its index while reads and writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AddConstraint", "AT_AddColumn"}),
)
