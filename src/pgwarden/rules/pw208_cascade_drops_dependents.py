"""Drops or empties objects with CASCADE, taking unnamed dependents with them.

## What it does
Flags `DROP ... CASCADE` (tables, views, types, functions, columns,
constraints, ...) and `TRUNCATE ... CASCADE` on objects that existed before
the migration. `DROP SCHEMA ... CASCADE` is PW206. Not a trigger, policy,
extended statistics object, event trigger or foreign key (one the catalog or
an earlier statement of the plan shows): nothing can depend on one, so
CASCADE drops nothing more.

Severity: error when the cascade can take data with it (TRUNCATE, and DROP
TYPE / DOMAIN, which drop the columns of that type); a warning otherwise
(views, foreign keys, triggers and defaults go, the rows stay).

## Why is this bad?
CASCADE removes whatever depends on the named object without listing it:
views built on a table, foreign keys in other tables that reference it,
columns whose type is being dropped, triggers calling a function, or (for
TRUNCATE) every row of every referencing table. Those objects vanish
silently, other tables lose integrity guarantees, and code using them breaks.
Each dropped dependent is also locked ACCESS EXCLUSIVE.

## Example
```sql
DROP TABLE payment_accounts CASCADE;
```

## Use instead
```sql
-- drop (or re-point) each dependent on purpose first, then:
DROP VIEW account_balances;
ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey;
DROP TABLE payment_accounts;  -- pgwarden: ignore PW201 unused since release 41, backup verified
```
Without CASCADE the statement fails and names what still depends on the
object, which is the review you want. Alembic and Django never emit CASCADE
on their own; it comes from `op.execute` / `RunSQL`.

## Fix safety
No fix: which dependents may go is a decision.

## References
https://www.postgresql.org/docs/current/ddl-depend.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.locks_core import FK_TRIGGERS_DROPPED
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, ident, object_name, qualified, regclass, table_of
from pgwarden.rules.base import Hit, LintContext, Rule

_HELP = "drop or re-point each dependent on purpose first, then drop without CASCADE"


# Objects no other object can depend on (pg_depend never names them as referenced).
_NO_DEPENDENTS = frozenset({"trigger", "policy", "statistic_ext", "event_trigger"})


def _cascaded(step: Step, ctx: LintContext) -> list[str]:
    """What the step drops or empties with CASCADE, in words."""
    drop = step.tree.get("DropStmt")
    if drop is not None and drop.get("behavior") == "DROP_CASCADE":
        kind = drop.get("removeType", "").removeprefix("OBJECT_").lower()
        if kind == "schema":
            return []  # PW206
        if kind in _NO_DEPENDENTS:
            return []  # nothing can depend on it: CASCADE drops nothing more
        out = []
        for obj in drop.get("objects") or ():
            name = object_name(obj)
            if qualified(name) not in ctx.created:
                out.append(f"{kind.replace('_', ' ')} {name}")
        return out
    truncate = step.tree.get("TruncateStmt")
    if truncate is not None and truncate.get("behavior") == "DROP_CASCADE":
        tables = [regclass(r.get("RangeVar")) for r in truncate.get("relations") or ()]
        return [f"table {t} (TRUNCATE)" for t in tables if qualified(t) not in ctx.created]
    table = table_of(step)
    if table is None or qualified(table) in ctx.created:
        return []
    out = []
    for subtype, cmd in alter_cmds(step):
        if cmd.get("behavior") != "DROP_CASCADE":
            continue
        if subtype == "AT_DropColumn":
            out.append(f"column {table}.{ident(str(cmd.get('name')))}")
        elif subtype == "AT_DropConstraint":
            name = str(cmd.get("name"))
            fk = f"DROP CONSTRAINT {name}: {FK_TRIGGERS_DROPPED}"
            if any(lk.reason == fk for lk in step.effects.locks):
                continue  # a foreign key (the catalog or the plan says): nothing depends on it
            out.append(f"constraint {ident(name)} of {table}")
    return out


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    what = _cascaded(step, ctx)
    if not what:
        return
    if step.kind == "TruncateStmt":
        also = "also empties every table with a foreign key to it, unnamed, and all their rows"
    else:
        also = (
            "also drops every object that depends on it, unnamed: views, foreign keys in other "
            "tables, columns of a dropped type, triggers, defaults"
        )
    yield Hit(
        message=f"CASCADE on {', '.join(what)} {also}; each is locked ACCESS EXCLUSIVE (blocks "
        "reads and writes) and is gone",
        help=_HELP,
        severity=Severity.ERROR if _loses_rows(step) else Severity.WARNING,
    )


def _loses_rows(step: Step) -> bool:
    """Whether the cascade can take rows or columns of other tables with it: TRUNCATE
    empties referencing tables, and dropping a type or domain drops the columns of it.
    Other cascades drop views, constraints, triggers, defaults: code breaks, data stays."""
    if step.kind == "TruncateStmt":
        return True
    kind = step.tree.get("DropStmt", {}).get("removeType")
    return kind in ("OBJECT_TYPE", "OBJECT_DOMAIN")


RULE = Rule(
    code="PW208",
    name="cascade-drops-dependents",
    summary="CASCADE silently drops or empties every dependent object",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"DropStmt", "TruncateStmt", "AlterTableStmt"}),
    subtypes=frozenset({"AT_DropColumn", "AT_DropConstraint"}),
)
