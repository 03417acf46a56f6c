"""Sets NOT NULL on a column by scanning the whole table under ACCESS EXCLUSIVE.

## What it does
Flags `ALTER TABLE ... ALTER COLUMN c SET NOT NULL` (and, on PostgreSQL 18,
`ADD CONSTRAINT ... NOT NULL c` without `NOT VALID`) on an existing table when
nothing proves the column has no NULLs: no validated `CHECK (c IS NOT NULL)`
in the catalog or earlier in the plan. It also flags `ADD PRIMARY KEY USING
INDEX` when the catalog shows a key column is still nullable, because the
primary key sets NOT NULL on it with the same scan. Not when the same ALTER TABLE
rewrites the table (`ALTER COLUMN c TYPE bigint, ALTER COLUMN c SET NOT NULL`):
the rewrite checks each row as it copies it, with no scan of its own, and the
rewrite is PW104's.

## Why is this bad?
SET NOT NULL takes ACCESS EXCLUSIVE on the table and then reads every row to
check for NULLs. Reads and writes of the table wait for the whole scan, which
on a large table takes seconds to minutes. Since PostgreSQL 12 the scan is
skipped when a valid `CHECK (c IS NOT NULL)` already proves it, and that
CHECK can be validated without blocking anyone.

## Example
```sql
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
```

## Use instead
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_status_not_null_check
    CHECK (status IS NOT NULL) NOT VALID;
-- in a separate transaction (scans under SHARE UPDATE EXCLUSIVE: reads and writes go on):
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_status_not_null_check;
-- in a separate transaction (no scan: the valid CHECK proves it):
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices DROP CONSTRAINT invoices_status_not_null_check;
```
On PostgreSQL 18, a NOT NULL constraint can be added NOT VALID itself: new
rows are checked at once (the column is marked NOT NULL), and VALIDATE scans
under SHARE UPDATE EXCLUSIVE. `--fix` writes this form when the plan's server
is 18 (`--pg-version 18`, `pg_version = 18`, or a snapshot of an 18 server):
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_status_not_null NOT NULL status NOT VALID;
-- in a separate transaction:
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_status_not_null;
```
Alembic: `op.create_check_constraint(..., postgresql_not_valid=True)`, then
`op.execute("ALTER TABLE ... VALIDATE CONSTRAINT ...")` in the next revision,
then `op.alter_column(..., nullable=False)` and `op.drop_constraint(...)`.
Django: `AddConstraint` of a `CheckConstraint` cannot say NOT VALID, so use
`RunSQL` for the first two steps (the validation in a migration with
`atomic = False` or a migration of its own), then `AlterField(null=False)`
and `RunSQL` to drop the check.

## Fix safety
Safe: the column ends up NOT NULL as before. If the column does hold NULLs,
`VALIDATE` fails (without blocking anyone) instead of the deploy; backfill
them first.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import Node
from pgwarden.findings import Fix, FixStatement, Placement
from pgwarden.plan import Step
from pgwarden.rules._sql import (
    alter_cmds,
    how_long,
    ident,
    make_object_name,
    strings,
    strongest_on,
    table_of,
)
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock


def _not_null_columns(step: Step) -> tuple[list[str], bool]:
    """Columns this step makes NOT NULL, and whether it adds a PRIMARY KEY USING INDEX."""
    cols: list[str] = []
    pk_using_index = False
    for subtype, cmd in alter_cmds(step):
        if subtype == "AT_SetNotNull":
            cols.append(str(cmd.get("name")))
        elif subtype == "AT_AddConstraint":
            con = cmd.get("def", {}).get("Constraint", {})
            if con.get("contype") == "CONSTR_NOTNULL" and not con.get("skip_validation"):
                cols.extend(strings(con.get("keys")))
            elif con.get("contype") == "CONSTR_PRIMARY" and con.get("indexname"):
                pk_using_index = True
    return cols, pk_using_index


def _not_null_proved(expr: Node | None) -> set[str]:
    """Columns a CHECK expression proves NOT NULL (top level or AND terms)."""
    if expr is None:
        return set()
    test = expr.get("NullTest")
    if test is not None:
        ref = strings(test.get("arg", {}).get("ColumnRef", {}).get("fields"))
        return set(ref[-1:]) if test.get("nulltesttype") == "IS_NOT_NULL" else set()
    boolexpr = expr.get("BoolExpr")
    if boolexpr is not None and boolexpr.get("boolop") == "AND_EXPR":
        return set().union(*(_not_null_proved(arg) for arg in boolexpr.get("args", ())))
    return set()


@dataclass
class _Proofs:
    """What earlier steps proved about NULLs in one table's columns."""

    pending: dict[str, set[str]] = field(default_factory=dict)  # NOT VALID, awaiting VALIDATE
    valid: dict[str, set[str]] = field(default_factory=dict)  # constraint -> columns proved
    proven: set[str] = field(default_factory=set)  # columns already NOT NULL

    def covers(self, column: str) -> bool:
        return column in self.proven or any(column in cols for cols in self.valid.values())


def _proofs(ctx: LintContext, table: str) -> _Proofs:
    tables = cast("dict[str, _Proofs]", ctx.state.setdefault(RULE_CODE, {}))
    return tables.setdefault(table, _Proofs())


def observe(step: Step, ctx: LintContext) -> None:
    """Track NOT NULL proofs (CHECKs, NOT NULL constraints, SET NOT NULL) per table."""
    table = table_of(step)
    if table is None:
        return
    p = _proofs(ctx, table)
    for subtype, cmd in alter_cmds(step):
        con = cmd.get("def", {}).get("Constraint", {})
        name = str(con.get("conname") or cmd.get("name") or "")
        kind = con.get("contype")
        if subtype == "AT_AddConstraint" and kind in ("CONSTR_CHECK", "CONSTR_NOTNULL"):
            cols = (
                _not_null_proved(con.get("raw_expr"))
                if kind == "CONSTR_CHECK"
                else set(strings(con.get("keys")))
            )
            if cols:
                (p.pending if con.get("skip_validation") else p.valid)[name] = cols
        elif subtype == "AT_ValidateConstraint" and name in p.pending:
            p.valid[name] = p.pending.pop(name)
        elif subtype == "AT_DropConstraint":
            p.pending.pop(name, None)
            p.valid.pop(name, None)
        elif subtype == "AT_SetNotNull":
            p.proven.add(str(cmd.get("name")))
        elif subtype == "AT_DropNotNull":
            p.proven.discard(str(cmd.get("name")))  # NULLs may be written from here on
        elif subtype == "AT_AddColumn":
            col = cmd.get("def", {}).get("ColumnDef", {})
            colname = str(col.get("colname"))
            if any(
                c.get("Constraint", {}).get("contype") in ("CONSTR_NOTNULL", "CONSTR_PRIMARY")
                for c in col.get("constraints") or ()
            ):
                p.proven.add(colname)
            else:
                p.proven.discard(colname)


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    table = table_of(step)
    if table is None:
        return
    cols, pk_using_index = _not_null_columns(step)
    if not (cols or pk_using_index) or not step.effects.scans:
        return  # the lock model knows a valid CHECK or NOT NULL already proves it
    if table in step.effects.rewrites:
        return  # the rewrite checks each row as it copies it: no scan of its own (PW104's)
    proofs = _proofs(ctx, table)
    cols = [c for c in cols if not proofs.covers(c)]
    if not cols and not pk_using_index:
        return
    est = ctx.duration(table, rewrite=False)
    judged = ctx.judge(table, lock_s=est)
    if judged.severity is None:
        return
    mode = strongest_on(step, table) or LockMode.ACCESS_EXCLUSIVE
    what = (
        f"sets NOT NULL on {', '.join(map(ident, cols))}"
        if cols
        else "adds a primary key over nullable columns, which sets them NOT NULL,"
    )
    yield Hit(
        message=f"{what} by scanning all of {table} for NULLs ({how_long(est)}) while holding "
        f"{describe_lock(mode, table)}; {table}: {judged.size}",
        help="add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in a separate transaction, "
        "then SET NOT NULL (no scan) and drop the CHECK",
        severity=judged.severity,
        fix=None
        if _crossed(step, _crossings(ctx), table, cols)
        else fix(step, table, cols, ctx.plan.server_version, _names_taken(ctx)),
    )


# The last statement of each transaction a fix must not move past, by (transaction, table,
# column): an ALTER TABLE dropping NOT NULL of, dropping or adding the column, or a RENAME of
# it; column None: a RENAME or DROP of the table itself.
_Crossings = dict[tuple[int, str, str | None], int]


def _crossings(ctx: LintContext) -> _Crossings:
    """The plan's statements that a fix may not move past, read once per plan."""
    key = f"{RULE_CODE}.crossings"
    found = ctx.state.get(key)
    if found is None:
        out: _Crossings = {}
        for later in ctx.plan.steps:
            tx = later.transaction
            if tx is None:
                continue
            changed = _changed_columns(later)
            altered = table_of(later) if changed else None
            if altered is not None:
                for name in changed:
                    out[(tx, altered, name)] = later.index
            if later.kind in ("RenameStmt", "DropStmt"):
                kind = str(later.body.get("renameType"))
                column: str | None = (
                    str(later.body.get("subname")) if kind == "OBJECT_COLUMN" else None
                )
                for lock in later.effects.locks:
                    out[(tx, lock.relation, column)] = later.index
        found = ctx.state[key] = out
    return cast("_Crossings", found)


def _crossed(step: Step, crossings: _Crossings, table: str, cols: list[str]) -> bool:
    """Whether a later step of the step's transaction drops NOT NULL of, drops, adds or
    renames one of `cols`, or renames or drops `table`: the fix's statements that run
    after the commit would move past it (a DROP NOT NULL undone, a name gone)."""
    tx = step.transaction
    if tx is None:
        return False
    return any(crossings.get((tx, table, c), -1) > step.index for c in [*cols, None])


def _changed_columns(step: Step) -> set[str]:
    """Columns an ALTER TABLE step drops NOT NULL of, drops or adds."""
    out: set[str] = set()
    for sub, cmd in alter_cmds(step):
        if sub in ("AT_DropNotNull", "AT_DropColumn"):
            out.add(str(cmd.get("name")))
        elif sub == "AT_AddColumn":
            out.add(str(cmd.get("def", {}).get("ColumnDef", {}).get("colname")))
    return out


def _names_taken(ctx: LintContext) -> dict[str, tuple[str, str]]:
    """The constraint names earlier fixes of the plan chose, with the (table, column) each
    is for (a column fixed twice gets a CHECK name of its own each time)."""
    return cast("dict[str, tuple[str, str]]", ctx.state.setdefault(f"{RULE_CODE}.names", {}))


def fix(
    step: Step,
    table: str,
    cols: list[str],
    server_version: int | None = None,
    taken: dict[str, tuple[str, str]] | None = None,
) -> Fix | None:
    """NOT NULL ... NOT VALID + VALIDATE on PostgreSQL 18 (when the plan says so), else
    the CHECK-first recipe; only when the statement just sets NOT NULL. `taken`: names
    earlier fixes chose, with their (table, column) (skipped; the chosen ones are added).

    Names are cut to 63 bytes as the server cuts the names it makes (makeObjectName:
    the longer of table and column first, on a character boundary), so that two long
    columns of a long table do not end with the same name once the server cuts them."""
    if not cols or any(sub != "AT_SetNotNull" for sub, _ in alter_cmds(step)):
        return None
    base = table.rsplit(".", 1)[-1].strip('"')
    taken = {} if taken is None else taken
    if server_version is not None and server_version >= 18:
        # The name PostgreSQL gives the NOT NULL constraint SET NOT NULL makes
        # (ChooseConstraintName: not_null, else not_null1, not_null2, ...); a column's
        # stays its own (a DROP NOT NULL drops it before another fix can add it again).
        nn = {c: _choose(base, c, "not_null", "{}{}", taken) for c in cols}
        add = [
            f"ALTER TABLE {table} ADD CONSTRAINT {ident(n)} NOT NULL {ident(c)} NOT VALID;"
            for c, n in nn.items()
        ]
        validate = [f"ALTER TABLE {table} VALIDATE CONSTRAINT {ident(n)};" for n in nn.values()]
        return Fix(_group(add, Placement.IN_PLACE) + _group(validate, Placement.AFTER, _SEPARATE))
    names = {c: _choose(base, c, "not_null_check", "{}_{}", taken, own=False) for c in cols}
    add = [
        f"ALTER TABLE {table} ADD CONSTRAINT {ident(n)} CHECK ({ident(c)} IS NOT NULL) NOT VALID;"
        for c, n in names.items()
    ]
    validate = [f"ALTER TABLE {table} VALIDATE CONSTRAINT {ident(n)};" for n in names.values()]
    finish = [f"ALTER TABLE {table} ALTER COLUMN {ident(c)} SET NOT NULL;" for c in cols] + [
        f"ALTER TABLE {table} DROP CONSTRAINT {ident(n)};" for n in names.values()
    ]
    return Fix(
        _group(add, Placement.IN_PLACE)
        + _group(validate, Placement.AFTER, _SEPARATE)
        + _group(finish, Placement.AFTER, _SEPARATE)
    )


_SEPARATE = "in a separate transaction:"


def _choose(
    table: str,
    column: str,
    label: str,
    numbered: str,
    taken: dict[str, tuple[str, str]],
    *,
    own: bool = True,
) -> str:
    """table_column_label cut to fit, or with the label numbered (`numbered` formats
    label and number: from 1 as the server numbers, from 2 for `_2`) while the name
    is taken (by another column when `own`: a column keeps its name); recorded."""
    chosen, n = make_object_name(table, column, label), 0 if own else 1
    while chosen in taken and not (own and taken[chosen] == (table, column)):
        n += 1
        chosen = make_object_name(table, column, numbered.format(label, n))
    taken[chosen] = (table, column)
    return chosen


def _group(
    sqls: list[str], placement: Placement, comment: str | None = None
) -> tuple[FixStatement, ...]:
    """Statements placed alike, the comment above the first."""
    return tuple(
        FixStatement(q, placement, comment if i == 0 else None) for i, q in enumerate(sqls)
    )


RULE_CODE = "PW103"
RULE = Rule(
    code=RULE_CODE,
    name="not-null-set-with-table-scan",
    summary="SET NOT NULL without a valid CHECK scans the table while reads and writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_SetNotNull", "AT_AddConstraint"}),
    observe=observe,
    observe_kinds=frozenset({"AlterTableStmt"}),  # table_of(): an ALTER TABLE's table
)
