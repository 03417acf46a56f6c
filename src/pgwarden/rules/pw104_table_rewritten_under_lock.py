"""Rewrites a whole existing table (and rebuilds its indexes) under ACCESS EXCLUSIVE.

## What it does
Flags an `ALTER TABLE` that the lock model says rewrites an existing table:
a column type change that is not binary-compatible (`int` to `bigint`,
`text` to `int`, `timestamp` to `timestamptz` outside UTC, shrinking a
`varchar`), a new column whose default is volatile (`gen_random_uuid()`,
`clock_timestamp()`, `random()`), a new `serial` or identity column, a new
`GENERATED ALWAYS AS (...) STORED` column, `SET EXPRESSION`, `SET LOGGED` /
`SET UNLOGGED` and `SET ACCESS METHOD`. The message names the cause.
Binary-compatible changes (`varchar(n)` to `text`, raising a `varchar`
limit, `numeric` precision up) and constant or stable defaults (`DEFAULT 0`,
`DEFAULT now()`) do not rewrite and are not flagged.

Whether a type change rewrites depends on the column's current type. With
`--database-url` or `--stats`, when the plan added the column, or when the
migration framework says what the column was (Alembic's `existing_type`,
Django's old field) the answer is exact and the message names both types
(`integer -> bigint rewrites the table`; `varchar(100) -> varchar(255)` is done in
place and not flagged). A type change done in place still rebuilds the
column's indexes when their operator class changes, or when a `COLLATE`
clause gives the column a new collation (`TYPE text COLLATE "C"`; a clause
naming the current collation is taken as a change too, as it is not known),
reading all of the table under ACCESS EXCLUSIVE. `timestamp` to `timestamptz` is done in place only
when the session's TimeZone is UTC: the catalog's, a `SET TimeZone` earlier in
the plan, or the one Django sets; otherwise it is assumed not UTC. From the
SQL alone the current type is not known and a rewrite is assumed, with the
severity set by what real migrations do (bench/alter_type_study.json,
docs/lock-model.md): a change to `text` or an unbounded `varchar` is a
warning, since 14 of 17 such real changes were from a varchar and ran in
place, and so is a change between `timestamp` and `timestamptz` after a `SET
TimeZone = 'UTC'` in the plan (done in place from the other of the two); every
other target (`varchar(n)`, `bigint`, `numeric(p,s)`, `timestamptz` in a
session of unknown zone, `jsonb`, ...) stays an error. Setting
`unknown_type_change = "error"` makes them all errors.

## Why is this bad?
A rewrite copies every row into a new file and rebuilds every index, holding
ACCESS EXCLUSIVE the whole time: neither reads nor writes of the table get
through until it is done, which on a large table is minutes. It also needs
free disk for a second copy of the table and its indexes, and writes it all
to WAL (replicas fall behind).

## Example
```sql
ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint;
```

## Use instead
```sql
ALTER TABLE invoices ADD COLUMN amount_cents_new bigint;
-- write both columns from the application (or a trigger), then backfill in batches:
--   pgwarden backfill ... SET amount_cents_new = amount_cents
-- then switch reads and writes to the new column and drop the old one.
```
Expand and contract: a new column of the new type, dual writes, a batched
backfill, then a rename in a short transaction. For a volatile default, add
the column without it, `SET DEFAULT` for new rows, and backfill old rows in
batches. A stored generated column can become a plain column kept up to date
by a trigger, or (PostgreSQL 18) a virtual one. Alembic: `op.add_column` plus
`op.execute` for the backfill, in separate revisions. Django: `AddField` with
`null=True` and no `db_default`, a data migration (`RunPython`, batched, with
`atomic = False`), then `AlterField`.

## Fix safety
No mechanical fix: the safe path spans several deploys and application
changes.

## References
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
"""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode, TypeChange
from pgwarden.analysis.inplan import sql_type
from pgwarden.analysis.locks_altertable import (
    CURRENT_TYPE_UNKNOWN,
    IN_PLACE_IN_UTC,
    MOSTLY_IN_PLACE,
    target_family,
    type_name,
    volatile,
)
from pgwarden.analysis.nodes import TypeName, dotted
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import (
    alter_cmds,
    func_names,
    how_long,
    ident,
    judged_rewrites,
    strings,
    table_of,
    type_of,
    type_text,
)
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}


def _constrained_domain(ctx: LintContext, type_name: TypeName) -> bool:
    catalog = ctx.snapshot.catalog if ctx.snapshot is not None else None
    names = strings(type_name.get("names"))
    return catalog is not None and catalog.constrained_domain(names)


_KNOW = "lint with --database-url or --stats to know"


def _unknown_type(step: Step, column: str) -> bool:
    """Whether the lock model assumed a rewrite because `column`'s current type is unknown."""
    named = f".{column} is not known (no catalog)"
    return any(a.startswith(CURRENT_TYPE_UNKNOWN) and named in a for a in step.effects.assumptions)


def _in_place_in_utc(step: Step, column: str) -> bool:
    """Whether the lock model said `column`'s change is in place from timestamp (or
    timestamptz), the session's TimeZone being UTC (a `SET TimeZone` earlier)."""
    named = f".{column} is not known (no catalog)"
    return any(
        a.startswith(CURRENT_TYPE_UNKNOWN) and named in a and a.endswith(IN_PLACE_IN_UTC)
        for a in step.effects.assumptions
    )


def _known_change(step: Step, name: str) -> TypeChange | None:
    """`name`'s type change as the lock model graded it from the known current type."""
    return next((c for c in step.effects.type_changes if c.column == name), None)


_ZONED = {"timestamp", "timestamptz"}


def _known_cause(change: TypeChange) -> str:
    """A rewriting type change from a known type, in words."""
    zoned = {change.old.partition("(")[0], change.new.partition("(")[0]} == _ZONED
    return (
        f"changing the type of {ident(change.column)} ({sql_type(change.old)} -> "
        f"{sql_type(change.new)} rewrites the table" + (" outside UTC)" if zoned else ")")
    )


def _type_cause(
    step: Step, ctx: LintContext, name: str, tn: TypeName, collate: bool = False
) -> tuple[str, bool]:
    """A type change in words, and whether it is a warning only: its current type is not
    known and real migrations mostly reach its target in place (setting unknown_type_change).
    `collate`: the change has a COLLATE clause, which rebuilds the column's indexes even
    where the table is kept."""
    indexes = ", though its COLLATE clause rebuilds the column's indexes" if collate else ""
    known = _known_change(step, name)
    if known is not None:
        return _known_cause(known), False
    what = f"changing the type of {ident(name)} to {type_text(tn)}"
    if not _unknown_type(step, name):
        return what, False
    if ctx.unknown_type_change != "error" and _in_place_in_utc(step, name):
        old = "timestamp" if type_text(tn) == "timestamptz" else "timestamptz"
        return (
            f"{what} if it is not now {old} (its current type is not known without a catalog; "
            f"from {old} the change is done in place, since the session's TimeZone is UTC"
            f"{indexes}; {_KNOW})",
            True,
        )
    studied = MOSTLY_IN_PLACE.get(target_family(type_name(tn)))
    if studied is None or ctx.unknown_type_change == "error":
        unknown = "its current type is not known without a catalog, so a rewrite is assumed"
        return f"{what} ({unknown}; {_KNOW})", False
    return (
        f"{what} if it is not now {studied.source} (its current type is not known without a "
        f"catalog; of {studied.total} real changes to {studied.words}, {studied.in_place} were "
        f"from {studied.source}, done in place{indexes}; {_KNOW})",
        True,
    )


def _causes(step: Step, ctx: LintContext) -> tuple[list[str], str, bool]:
    """Why the statement rewrites, in words, the help for the main cause, and whether every
    cause is a type change that real migrations mostly do in place (a warning only)."""
    causes: list[str] = []
    help_ = "no in-place way avoids the rewrite: build the new shape next to the old one"
    soft = 0  # type changes that are a warning only
    for subtype, cmd in alter_cmds(step):
        col = cmd.get("def", {}).get("ColumnDef", {})
        if subtype == "AT_AlterColumnType":
            known = _known_change(step, str(cmd.get("name")))
            if known is not None and not known.rewrites:
                continue  # done in place: not a cause of the rewrite
            cause, maybe = _type_cause(
                step, ctx, str(cmd.get("name")), col["typeName"], "collClause" in col
            )
            causes.append(cause)
            soft += maybe
            help_ = (
                "add a column of the new type, write both, backfill in batches (pgwarden "
                "backfill), switch reads, then drop the old column"
            )
        elif subtype == "AT_AddColumn":
            name = ident(str(col.get("colname")))
            typ = type_of(col.get("typeName", {}))[0]
            kinds = {
                c.get("Constraint", {}).get("contype"): c.get("Constraint", {})
                for c in col.get("constraints") or ()
            }
            if typ in _SERIAL:
                causes.append(f"the new {typ} column {name} (nextval() fills every row)")
                help_ = "add the column nullable without a default, then fill it in batches"
            elif "CONSTR_IDENTITY" in kinds:
                causes.append(f"the new identity column {name} (fills every row)")
                help_ = "add the column nullable without a default, then fill it in batches"
            elif "CONSTR_GENERATED" in kinds:
                causes.append(f"the new stored generated column {name} (computed for every row)")
                help_ = (
                    "add a plain nullable column kept up to date by a trigger and backfill it in "
                    "batches (or use a VIRTUAL generated column on PostgreSQL 18)"
                )
            elif "CONSTR_DEFAULT" in kinds and volatile(kinds["CONSTR_DEFAULT"].get("raw_expr")):
                calls = list(func_names(kinds["CONSTR_DEFAULT"].get("raw_expr")))
                call = f" {calls[0]}()" if calls else ""
                causes.append(f"the new column {name} with a volatile DEFAULT{call}")
                help_ = (
                    "add the column without the default, SET DEFAULT for new rows, then backfill "
                    "existing rows in batches (pgwarden backfill)"
                )
            elif _constrained_domain(ctx, col.get("typeName", {})):
                causes.append(
                    f"the new column {name} of domain {type_text(col.get('typeName', {}))}, whose "
                    "constraints are checked against every row"
                )
                help_ = (
                    "add the column with the domain's base type, backfill, add the constraints as "
                    "CHECK ... NOT VALID + VALIDATE, then change the type in a quiet window"
                )
        elif subtype in ("AT_SetLogged", "AT_SetUnLogged"):
            causes.append(f"SET {'LOGGED' if subtype == 'AT_SetLogged' else 'UNLOGGED'}")
        elif subtype == "AT_SetAccessMethod":
            causes.append(f"SET ACCESS METHOD {cmd.get('name')}")
        elif subtype == "AT_SetExpression":
            causes.append(
                f"SET EXPRESSION of {ident(str(cmd.get('name')))} (recomputed for every row)"
            )
    return causes or ["the change"], help_, 0 < soft == len(causes)


def maybe_in_place(step: Step, ctx: LintContext) -> bool:
    """Whether every cause of the step's rewrite is a type change from a type not known
    that real migrations mostly make in place (PW104's 'may rewrite', a warning)."""
    return step.kind == "AlterTableStmt" and bool(step.effects.rewrites) and _causes(step, ctx)[2]


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    if step.kind != "AlterTableStmt":
        return
    yield from _in_place(step, ctx)
    if not step.effects.rewrites:
        return
    causes, help_, soft = _causes(step, ctx)
    if causes == ["the change"] and any(sub == "AT_SetTableSpace" for sub, _ in alter_cmds(step)):
        return  # a copy into another tablespace: PW115
    if soft:
        help_ = (
            f"{_KNOW} exactly; if it does rewrite, {help_}, or set unknown_type_change = "
            '"error" to keep these an error'
        )
    verb = "may rewrite all of {} and rebuild" if soft else "rewrites all of {} and rebuilds"
    for table, est, size, severity, mode in judged_rewrites(step, ctx, list(step.effects.rewrites)):
        yield Hit(
            message=f"{verb.format(table)} its indexes ({how_long(est)}) while holding "
            f"{describe_lock(mode, table)}, because of {' and '.join(causes)}; {table}: {size}",
            help=help_,
            severity=Severity.WARNING if soft and severity is Severity.ERROR else severity,
        )


def _in_place(step: Step, ctx: LintContext) -> Iterator[Hit]:
    """A type change done in place that still scans: CHECKs re-validated, indexes rebuilt."""
    table = table_of(step)
    changed = [str(c.get("name")) for sub, c in alter_cmds(step) if sub == "AT_AlterColumnType"]
    spelled = []
    for name in changed:
        known = _known_change(step, name)
        spelled.append(
            ident(name)
            if known is None
            else f"{ident(name)} ({sql_type(known.old)} -> {sql_type(known.new)})"
        )
    if table is None or not changed or table in step.effects.rewrites:
        return
    kinds = {lk.relation: lk.relkind for lk in step.effects.locks}
    indexes = [r for r in step.effects.rewrites if kinds.get(r) == "index"]
    checks = table in step.effects.scans and not indexes
    if not (indexes or checks):
        return
    est = ctx.duration(table, kind="index" if indexes else "scan")
    judged = ctx.judge(table, lock_s=est)
    if judged.severity is None:
        return
    mode = step.effects.strongest().get(table, LockMode.ACCESS_EXCLUSIVE)
    collates = [
        f"COLLATE {dotted(c['def']['ColumnDef']['collClause'].get('collname'))}"
        for sub, c in alter_cmds(step)
        if sub == "AT_AlterColumnType" and "collClause" in c.get("def", {}).get("ColumnDef", {})
    ]
    why = f"the new collation, {', '.join(collates)}" if collates else "its operator class changes"
    work = (
        f"rebuilds {', '.join(indexes)} ({why})"
        if indexes
        else f"re-validates the CHECK constraints on {', '.join(map(ident, changed))} by reading "
        f"all of {table}"
    )
    yield Hit(
        message=f"changes the type of {', '.join(spelled)} without rewriting {table}, but "
        f"{work} ({how_long(est)}) while holding {describe_lock(mode, table)}; "
        f"{table}: {judged.size}",
        help="add a column of the new type, backfill it in batches, and swap; or accept the "
        "scan in a quiet window",
        severity=judged.severity,
    )


RULE = Rule(
    code="PW104",
    name="table-rewritten-under-lock",
    summary="an ALTER TABLE rewrites the whole table while reads and writes wait",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"AlterTableStmt"}),
)
