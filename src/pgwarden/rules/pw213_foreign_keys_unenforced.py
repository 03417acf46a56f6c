"""Turns off the triggers that enforce foreign keys, so bad rows get in unchecked.

## What it does
Flags `ALTER TABLE ... DISABLE TRIGGER ALL` (which includes the internal
triggers that check foreign keys) and `SET session_replication_role =
replica` (which skips them for the whole session) on tables that existed
before the migration.

## Why is this bad?
Foreign keys are enforced by internal triggers. While they are off, every
INSERT and UPDATE on the table, the migration's own and, once committed, the
application's, is stored without its reference being checked; turning them
back on does not re-check the rows written meanwhile, and the constraint still
claims to be valid, so the planner and readers trust rows that may point
nowhere. The ALTER itself takes SHARE ROW EXCLUSIVE on the table (writes
wait, briefly).

## Example
```sql
ALTER TABLE invoices DISABLE TRIGGER ALL;
```

## Use instead
```sql
ALTER TABLE invoices DISABLE TRIGGER USER;
```
`DISABLE TRIGGER USER` (or a named trigger) leaves the foreign-key triggers
on. To load data faster, batch it with `pgwarden backfill` instead. If the
checks really must be skipped, drop the foreign key and add it back with
`NOT VALID` followed by `VALIDATE CONSTRAINT` (see PW102), which checks every
row. Alembic: `op.execute("ALTER TABLE ... DISABLE TRIGGER USER")`. Django:
`RunSQL` with the same statement.

## Fix safety
No fix: whether user triggers may be skipped is a decision about the data.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-DISABLE-ENABLE-TRIGGER
https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-SESSION-REPLICATION-ROLE
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import alter_cmds, table_of
from pgwarden.rules.base import Hit, LintContext, Rule

_HELP = (
    "use DISABLE TRIGGER USER (foreign-key triggers stay on); to skip the checks, drop the "
    "foreign key and add it back NOT VALID, then VALIDATE CONSTRAINT"
)


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    setting = step.tree.get("VariableSetStmt")
    if setting is not None:
        args = setting.get("args") or []
        value = args[0].get("A_Const", {}).get("sval", {}).get("sval") if args else None
        if setting.get("name") == "session_replication_role" and value == "replica":
            yield Hit(
                message="session_replication_role = replica skips the foreign-key checks of "
                "every table this session writes, and nothing re-checks those rows afterwards",
                help=_HELP,
                severity=Severity.WARNING,
            )
        return
    table = table_of(step)
    if table is None or ctx.judge(table).severity is None:
        return  # created earlier in this plan: nothing to protect
    if any(subtype == "AT_DisableTrigAll" for subtype, _ in alter_cmds(step)):
        yield Hit(
            message=f"DISABLE TRIGGER ALL turns off the foreign-key checks on {table}: rows "
            "written until ENABLE TRIGGER ALL are stored unchecked, and enabling them again "
            "does not re-check them",
            help=_HELP,
            severity=Severity.WARNING,
        )


RULE = Rule(
    code="PW213",
    name="foreign-keys-unenforced",
    summary="DISABLE TRIGGER ALL or session_replication_role = replica skips foreign-key checks",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt", "VariableSetStmt"}),
    subtypes=frozenset({"AT_DisableTrigAll"}),
)
