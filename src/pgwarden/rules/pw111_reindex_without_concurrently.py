"""Rebuilds indexes with REINDEX without CONCURRENTLY, blocking writes and index reads.

## What it does
Flags `REINDEX INDEX`, `REINDEX TABLE`, `REINDEX SCHEMA` and `REINDEX
DATABASE` without `CONCURRENTLY` (and `REINDEX SYSTEM`, which has no
concurrent form) on relations that existed before the migration.

## Why is this bad?
A plain REINDEX holds SHARE on the table (every INSERT, UPDATE and DELETE
waits) and ACCESS EXCLUSIVE on each index it rebuilds, so every query whose
plan would use that index waits as well, and the planner itself waits when
it looks at the index. The rebuild reads the whole table, so on a large
table the application stalls for minutes.

## Example
```sql
REINDEX INDEX invoices_payment_account_id_idx;
```

## Use instead
```sql
REINDEX INDEX CONCURRENTLY invoices_payment_account_id_idx;
```
`REINDEX DATABASE` needs the database's name before PostgreSQL 16, so an
unnamed one gets a mechanical fix only when the plan's server is 16 or newer
(`--pg-version`, `pg_version`, or the snapshot's server).
`CONCURRENTLY` (PostgreSQL 12+) builds a new copy next to the old one under
SHARE UPDATE EXCLUSIVE (reads and writes go on) and swaps them; it cannot run
inside a transaction block. A failed run leaves an invalid `_ccnew` index:
drop it and retry. Alembic: `op.execute("REINDEX ... CONCURRENTLY ...")`
inside `autocommit_block()`. Django: `RunSQL` in a migration with
`atomic = False`.

A partitioned table (or index) is rebuilt one partition at a time, each in
a transaction of its own: one finding names the partition held longest.
PostgreSQL lists the partitions of a partitioned table under SHARE, in the
concurrent form too, so `REINDEX TABLE CONCURRENTLY` of one waits behind an
open writer of any partition, and that partition's writers queue behind it:
set a lock_timeout (PW120 says so).

## Fix safety
Safe: the rebuilt index is the same. It takes longer and uses the space of a
second copy while it runs. The fixed file first drops the INVALID
`<index>_ccnew` / `<index>_ccold` copies an earlier, cancelled run of the same
rebuild left (for REINDEX TABLE: of the indexes the catalog lists), so a retry
after a timeout leaves no invalid index behind. The copies of a REINDEX
SCHEMA or DATABASE, or of a REINDEX TABLE without a catalog (no
`--database-url` or snapshot), cannot be named: the file's header says to
retry with `pgwarden apply`, which finds and drops them before rebuilding (as
it does for every REINDEX ... CONCURRENTLY it runs). A
cancelled REINDEX TABLE also leaves a copy of the table's TOAST index
(`pg_toast.pg_toast_<oid>_index_ccnew`), which a second REINDEX CONCURRENTLY
skips with a warning: a block finds it from the table and drops it (a plain
DROP INDEX, under the file's lock_timeout: it waits for and blocks only the
statements that read, write or delete that table's out-of-line values). Naming a
pg_toast index needs USAGE on that schema, which only superusers have by
default: otherwise the block warns with the `DROP INDEX CONCURRENTLY` for a
superuser to run.

## References
https://www.postgresql.org/docs/current/sql-reindex.html#SQL-REINDEX-CONCURRENTLY
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import TABLE_KINDS, how_long, ident, option_on, regclass
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

_KEYWORD = re.compile(r"^(\s*REINDEX\s+(?:\([^)]*\)\s*)?(?:INDEX|TABLE|SCHEMA|DATABASE))\b", re.I)
_HELP = "use REINDEX ... CONCURRENTLY, outside a transaction block"


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    body = step.tree.get("ReindexStmt")
    if body is None or option_on(body.get("params"), "concurrently"):
        return
    kind = body.get("kind", "").removeprefix("REINDEX_OBJECT_").lower()
    if kind in ("schema", "database", "system"):
        name = body.get("name")
        target = f"{kind} {ident(name)}" if name else f"the current {kind}"
        no_concurrent = (
            " (there is no concurrent form for system catalogs)" if kind == "system" else ""
        )
        version = ctx.plan.server_version
        # Before PostgreSQL 16 REINDEX DATABASE / SYSTEM need the name (a syntax error
        # without it); the fix keeps the statement's shape, so it is offered without a
        # name only for a plan whose server is known to be 16 or newer.
        unnamed = kind == "database" and not name
        needs_name = unnamed and (version is None or version < 16)
        old_server = (
            f"; before PostgreSQL 16 it needs the database's name (PostgreSQL {version} "
            "rejects it without one)"
            if unnamed and version is not None and version < 16
            else ""
        )
        yield Hit(
            message=f"rebuilds every index of {target}{no_concurrent}, each table "
            "held in SHARE (blocks writes) and each index in ACCESS EXCLUSIVE (queries using it "
            f"wait) while its indexes are rebuilt{old_server}",
            help="run it in a maintenance window, not a migration"
            if kind == "system"
            else "use REINDEX DATABASE CONCURRENTLY <this database's name>, outside a "
            "transaction block (the name is required before PostgreSQL 16)"
            if needs_name
            else _HELP,
            severity=Severity.ERROR,
            fix=fix(step) if kind != "system" and not needs_name else None,
        )
        return
    named = regclass(body.get("relation"))
    kinds = {lk.relation: lk.relkind for lk in step.effects.locks}
    tables = [r for r, k in kinds.items() if k in TABLE_KINDS]
    if kind == "table" and named not in tables:
        tables.append(named)
    if not tables:  # REINDEX INDEX without a catalog: the table is not known
        if ctx.judge(named).severity is None:
            return
        message = (
            f"rebuilds index {named} while reading its whole table, holding ACCESS EXCLUSIVE on "
            f"{named} (queries whose plan would use it wait) and SHARE on its table (blocks "
            "writes); the table is not known without a catalog, so its size is not either"
        )
        yield Hit(message=message, help=_HELP, severity=Severity.ERROR, fix=fix(step))
        return
    partitions = [r for r in tables if kinds[r] != "partitioned table"] if named in kinds else []
    if kinds.get(named) in ("partitioned table", "partitioned index") and partitions:
        # Each partition is rebuilt in a transaction of its own: one finding, for the
        # partition held longest, naming how many there are.
        flagged: list[tuple[int, float, Severity, str, str]] = []
        for t in partitions:
            t_est = ctx.duration(t, kind="index")
            t_judged = ctx.judge(t, lock_s=t_est)
            if t_judged.severity is not None:
                sev = t_judged.severity
                flagged.append((sev.rank, t_est or 0.0, sev, t_judged.size, t))
        if not flagged:
            return
        best = flagged[0]
        for f in flagged[1:]:
            if f[0] > best[0] or (f[0] == best[0] and f[1] > best[1]):
                best = f
        _, _, severity, size, table = best
        est = ctx.duration(table, kind="index")
        mode = step.effects.strongest().get(table, LockMode.SHARE)
        yield Hit(
            message=f"rebuilds the indexes of {len(partitions)} partition(s) of {named} one "
            f"at a time, holding {describe_lock(mode, 'each partition')} and ACCESS EXCLUSIVE "
            "on its indexes (queries whose plan would use them wait) while they are rebuilt; "
            f"the longest, {table}: {how_long(est)}, {size}",
            help=_HELP,
            severity=severity,
            fix=fix(step),
        )
        return
    for table in tables:
        est = ctx.duration(table, kind="index")
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is None:
            continue
        mode = step.effects.strongest().get(table, LockMode.SHARE)
        what = f"index {named}" if kind == "index" else f"the indexes of {table}"
        index_lock = (
            f" and ACCESS EXCLUSIVE on {named} (queries whose plan would use it wait)"
            if kind == "index"
            else " and ACCESS EXCLUSIVE on each index (queries whose plan would use it wait)"
        )
        yield Hit(
            message=f"rebuilds {what} ({how_long(est)}) holding "
            f"{describe_lock(mode, table)}{index_lock}; {table}: {judged.size}",
            help=_HELP,
            severity=judged.severity,
            fix=fix(step),
        )


def fix(step: Step) -> Fix | None:
    fixed, n = _KEYWORD.subn(r"\1 CONCURRENTLY", step.sql, count=1)
    if not n:
        return None
    return Fix((FixStatement(fixed.rstrip().rstrip(";") + ";", Placement.BEFORE),))


RULE = Rule(
    code="PW111",
    name="reindex-without-concurrently",
    summary="REINDEX without CONCURRENTLY blocks writes, and reads that use the index",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"ReindexStmt"}),
)
