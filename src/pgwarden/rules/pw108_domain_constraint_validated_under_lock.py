"""Adds or validates a domain constraint while every table using the domain is write-locked.

## What it does
Flags `ALTER DOMAIN ... ADD CONSTRAINT` without `NOT VALID`, `ALTER DOMAIN ...
SET NOT NULL` (and `ADD NOT NULL`), and `ALTER DOMAIN ... VALIDATE
CONSTRAINT`, when a table that existed before the migration has a column of
the domain, or when that is not known (no catalog: assumed so).

## Why is this bad?
The server checks every stored value of the domain: it takes SHARE on each
table with a column of that type and reads it in full. SHARE blocks INSERT,
UPDATE and DELETE for the whole scan, on every such table at once. Unlike a
table constraint, `VALIDATE CONSTRAINT` on a domain takes the same SHARE lock
(measured on PostgreSQL 15 to 18), so `NOT VALID` + `VALIDATE` only moves the
scan, it does not let writes through.

## Example
```sql
ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0);
```

## Use instead
```sql
-- New values are checked from now on; existing ones are not scanned:
ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0) NOT VALID;
-- Check existing rows per table without blocking writes (SHARE UPDATE EXCLUSIVE):
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive
    CHECK (amount > 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
```
Run `ALTER DOMAIN ... VALIDATE CONSTRAINT` only in a quiet window, or when the
tables using the domain are small.

## Fix safety
No mechanical fix: which tables to check, and whether the domain constraint
must end up validated, is a decision.

## References
https://www.postgresql.org/docs/current/sql-alterdomain.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.locks import DOMAIN_USERS_UNKNOWN
from pgwarden.analysis.nodes import AlterDomainStmt
from pgwarden.plan import Step
from pgwarden.rules._sql import dotted, how_long, ident
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock


def _validates(body: AlterDomainStmt) -> str | None:
    """What the statement checks existing values for, in words (None: nothing)."""
    sub = body.get("subtype")
    con = body.get("def", {}).get("Constraint", {})
    if sub == "C" and con.get("contype") in ("CONSTR_CHECK", "CONSTR_NOTNULL"):
        if con.get("skip_validation"):
            return None
        name = con.get("conname")
        return f"adds {'NOT NULL' if con['contype'] == 'CONSTR_NOTNULL' else 'CHECK'}" + (
            f" {ident(name)}" if name else ""
        )
    if sub == "O":
        return "sets NOT NULL"
    if sub == "V":
        return f"validates {ident(str(body.get('name')))}"
    return None


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("AlterDomainStmt")
    doing = _validates(body) if body is not None else None
    if body is None or doing is None:
        return
    domain = dotted(body.get("typeName"))
    help_ = (
        "add the domain constraint NOT VALID (new values are checked at once) and check "
        "existing rows per table with a CHECK ... NOT VALID + VALIDATE CONSTRAINT (SHARE "
        "UPDATE EXCLUSIVE: writes go on)"
    )
    unknown = any(a.startswith(DOMAIN_USERS_UNKNOWN) for a in step.effects.assumptions)
    if not step.effects.locks and unknown:
        judged = ctx.judge(f"(tables using {domain})")
        if judged.severity is not None:
            yield Hit(
                message=f"{doing} on domain {domain}: every table with a column of this type is "
                f"read in full while holding SHARE (blocks writes) on it; which tables use "
                f"{domain} is not known (no catalog): assumed large and busy",
                help=help_,
                severity=judged.severity,
            )
        return
    strongest = step.effects.strongest()
    for table in step.effects.scans:
        est = ctx.duration(table, rewrite=False)
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        mode = strongest.get(table, LockMode.SHARE)
        yield Hit(
            message=f"{doing} on domain {domain}: reads all of {table} to check its values "
            f"({how_long(est)}) while holding {describe_lock(mode, table)}; {table}: "
            f"{judged.size}",
            help=help_,
            severity=judged.severity,
        )


RULE = Rule(
    code="PW108",
    name="domain-constraint-validated-under-lock",
    summary="ALTER DOMAIN checks every table using the domain while writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterDomainStmt"}),
)
