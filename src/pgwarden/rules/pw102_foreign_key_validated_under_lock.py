"""Adds a foreign key that is validated while writes on both tables wait.

## What it does
Flags `ALTER TABLE ... ADD [CONSTRAINT ...] FOREIGN KEY` without `NOT VALID`
on a table that existed before the migration.

## Why is this bad?
Adding a foreign key takes SHARE ROW EXCLUSIVE on the table *and* on the
referenced table, then reads every row of the table to check it. Writes to
both tables wait for the whole scan. When an earlier statement of the same
transaction took ACCESS EXCLUSIVE (dropping the old constraint, as in the
Sendcloud outage), reads wait too. Queries pile up behind the lock, and every
waiting connection counts against `max_connections`.

## Example
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_payment_account_id_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id);
```

## Use instead
```sql
ALTER TABLE invoices ADD CONSTRAINT invoices_payment_account_id_fkey
    FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id) NOT VALID;
-- then, in a separate transaction:
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_payment_account_id_fkey;
```
`NOT VALID` makes the lock brief (new rows are checked at once); `VALIDATE`
scans under SHARE UPDATE EXCLUSIVE, which blocks neither reads nor writes.
Alembic: `op.create_foreign_key(..., postgresql_not_valid=True)` then
`op.execute("ALTER TABLE ... VALIDATE CONSTRAINT ...")` in a later revision.
Django: add the constraint with `SeparateDatabaseAndState` and two `RunSQL`
operations, the validation in a migration with `atomic = False`.

## Fix safety
Safe: the constraint is the same once validated. Between the two steps, old
rows are not yet checked.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import Constraint
from pgwarden.findings import Fix, FixStatement, Placement
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, ident, regclass
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock


def _foreign_keys(step: Step) -> Iterator[tuple[Constraint, bool]]:
    if step.kind != "AlterTableStmt":
        return
    for subtype, cmd in alter_cmds(step):
        con = cmd.get("def", {}).get("Constraint", {}) if subtype == "AT_AddConstraint" else {}
        if con.get("contype") == "CONSTR_FOREIGN" and not con.get("skip_validation"):
            yield con, False
        if subtype == "AT_AddColumn" and step.effects.scans:
            # ADD COLUMN ... DEFAULT ... REFERENCES: validated when a default fills the column
            col = cmd.get("def", {}).get("ColumnDef", {})
            for c in col.get("constraints") or ():
                inline = c.get("Constraint", {})
                if inline.get("contype") == "CONSTR_FOREIGN" and not inline.get("skip_validation"):
                    yield inline, True


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    stmt = step.tree.get("AlterTableStmt")
    if stmt is None:
        return
    table = regclass(stmt.get("relation"))
    own = step.effects.strongest()
    for con, inline in _foreign_keys(step):
        ref = regclass(con.get("pktable"))
        est = ctx.duration(table, kind="fk")
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        held = ctx.held_before(step)
        locks = []
        for rel in (table,) if ref == table else (table, ref):  # a self-reference: once
            mode = max(
                LockMode.SHARE_ROW_EXCLUSIVE,
                held.get(rel, (LockMode.ACCESS_SHARE,))[0],
                own.get(rel, LockMode.ACCESS_SHARE),
            )
            locks.append(describe_lock(mode, rel))
        earlier = sorted(
            {
                f"line {held[rel][1].location.line}"
                for rel in (table, ref)
                if rel in held and held[rel][0] > LockMode.SHARE_ROW_EXCLUSIVE
            }
        )
        from_earlier = (
            f" (ACCESS EXCLUSIVE taken earlier in this transaction, {', '.join(earlier)})"
            if earlier
            else ""
        )
        scan = f"~{est:.1f} s estimated" if est is not None else "duration grows with the table"
        yield Hit(
            message=f"validates foreign key {_name(con)} by scanning all of {table} "
            f"({scan}) while holding {' and '.join(locks)}{from_earlier}; "
            f"{table}: {judged.size}",
            help="add the column without its default and REFERENCES first, then the foreign key "
            "NOT VALID, then VALIDATE it in a separate transaction"
            if inline
            else "add the foreign key NOT VALID, then VALIDATE it in a separate transaction",
            severity=judged.severity,
            fix=None if inline else fix(step, con),
        )


def _name(con: Constraint) -> str:
    """The constraint's name as SQL, or `(unnamed)`."""
    name = con.get("conname")
    return ident(str(name)) if name else "(unnamed)"


def fix(step: Step, con: Constraint) -> Fix:
    name = con.get("conname")
    if not name:  # the name the server gives it: table_columns_fkey, unquoted
        cols = "_".join(str(a["String"]["sval"]) for a in con.get("fk_attrs", []))
        table = step.tree["AlterTableStmt"].get("relation", {}).get("relname", "?")
        name = f"{table}_{cols}_fkey"
        named = f"CONSTRAINT {ident(name)} FOREIGN KEY"
        sql = re.sub(r"\bFOREIGN\s+KEY\b", named, step.sql, count=1, flags=re.I)
    else:
        sql = step.sql
    return validate_later(sql.rstrip(), _sql_table(step), ident(str(name)))


def _sql_table(step: Step) -> str:
    """The ALTER TABLE's table as SQL, each part quoted as it must be."""
    rel = step.tree["AlterTableStmt"].get("relation", {})
    return ".".join(ident(p) for p in (rel.get("schemaname"), rel.get("relname", "?")) if p)


def validate_later(added: str, table: str, name: str) -> Fix:
    """`added` (an ALTER TABLE ... ADD CONSTRAINT `name`, no `;`) NOT VALID in place, then
    VALIDATE CONSTRAINT in a separate transaction; PW106's fix is the same."""
    return Fix(
        (
            FixStatement(f"{added} NOT VALID;", Placement.IN_PLACE),
            FixStatement(
                f"ALTER TABLE {table} VALIDATE CONSTRAINT {name};",
                Placement.AFTER,
                "in a separate transaction:",
            ),
        )
    )


RULE = Rule(
    code="PW102",
    name="foreign-key-validated-under-lock",
    summary="ADD FOREIGN KEY without NOT VALID scans the table while writes to both tables wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
    subtypes=frozenset({"AT_AddConstraint", "AT_AddColumn"}),
)
