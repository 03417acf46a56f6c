"""Preflight: existing rows that a new constraint would reject (PW401).

## What it does
With `--database-url` (read-only; point it at a replica), counts the rows of
existing tables that a new NOT NULL, UNIQUE, PRIMARY KEY, CHECK or FOREIGN KEY
constraint (or unique index, or NOT NULL column without a default) would
reject, and locates a few of them: the values of their primary key (else of a
unique key on NOT NULL columns, else their `ctid`), never any other column, so
that no row data (personal data, secrets) reaches CI logs. The rejected value
itself is said only where the constraint tells it (NULL); otherwise "values not
shown".

Constraints added inside a DO body (or a procedure the plan creates and CALLs)
are counted like top-level ones, at their line in the body, including the
`IF NOT EXISTS` blocks `lint --fix` writes.

A CHECK or FOREIGN KEY added `NOT VALID` checks no existing row, so nothing is
counted there: the rows are counted at its `VALIDATE CONSTRAINT`, where the
migration would fail, whether the plan added the constraint or the database
already has it (its definition read from `pg_constraint`).

The rows are counted as the plan's earlier statements leave them, still without
writing anything. An earlier UPDATE or DELETE of the table alone (no FROM / USING /
WITH; the table has no triggers and no generated columns) and TRUNCATE are folded
into the count: it reads the table through a CTE that applies their SET and WHERE,
so `UPDATE t SET c = 'x' WHERE c IS NULL` before `SET NOT NULL` leaves nothing to
report, while an UPDATE whose WHERE misses some rows still reports those (error).
Statements in a DO body pgwarden reads count the same way. So do an earlier
`ADD COLUMN` (the existing rows get its default or generated value, else NULL:
`ADD COLUMN zz int` then `SET NOT NULL` on a table with rows is an error) and
`ALTER COLUMN ... TYPE` (the column as its USING or cast leaves it, every other
column unchanged: a type change of another column keeps an error an error).
Any other earlier write to the table (INSERT, MERGE, COPY, UPDATE ... FROM, a
DO / CALL body pgwarden cannot read, a Django RunPython) cannot be folded: the
rows are counted as they are today and reported as a warning naming that
statement, to check it fixes them. So is a `pgwarden backfill` of the table
started and not finished (`pgwarden.backfills`): it may or may not end before
the deploy. And so is a folded statement whose SQL cannot be evaluated as a
query (a PL/pgSQL variable, `nextval()` in a read-only transaction). Writes made
by functions called from a SELECT are not seen.

When the role of `--database-url` may not read a table a check counts (no
SELECT), that check is skipped with a warning naming the role and the table to
grant, and the other checks go on.

## Why is this bad?
The migration fails at that statement in production: after it has waited for
its lock and scanned the table under it, with every earlier statement of its
transaction rolled back, and the deploy stuck half-way.

## Example
```sql
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;  -- 120 rows have status NULL
```

## Use instead
```sql
UPDATE invoices SET status = 'open' WHERE status IS NULL;  -- in batches, first
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
```
Fix the data in an earlier deploy (`pgwarden backfill`), then add the constraint.

## Fix safety
No automatic fix: which value the bad rows should get is a decision.

## References
https://www.postgresql.org/docs/current/ddl-constraints.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from pgwarden.analysis.nodes import AlterTableStmt, Constraint, RangeVar, relname, strings
from pgwarden.analysis.parse import check_expressions
from pgwarden.errors import DatabaseError
from pgwarden.findings import Finding, Severity
from pgwarden.lint.preflight_writes import (
    Sources,
    Write,
    added_columns,
    plain_table,
    step_writes,
    unfinished_backfills,
    unread_body,
)
from pgwarden.pg.connect import connect
from pgwarden.plan import Plan, Step

__all__ = ["CODE", "NAME", "Violation", "Write", "planner_rows", "preflight"]

CODE = "PW401"
NAME = "existing-rows-violate-new-constraint"


_Source = Callable[[RangeVar], sql.Composable]


@dataclass(frozen=True, slots=True)
class _Check:
    step: Step
    what: str  # "SET NOT NULL on invoices.status"
    count: sql.Composed  # SELECT count(*) ...
    sample: sql.Composed  # SELECT <the locator of a row>::text ... LIMIT n
    key: str  # what the sample shows: "id", "(tenant, id)", "ctid"; "" when not located
    shown: str  # what is known of the rejected values: "NULL in status", "values not shown"
    columns: tuple[str, ...] = ()  # the columns that must not be NULL (NOT NULL checks)


@dataclass(frozen=True, slots=True)
class Violation:
    """Rows that break a constraint a step adds."""

    step: Step
    what: str
    rows: int
    sample: tuple[str, ...]  # the `key` values of a few of the rows, never other columns
    key: str = ""  # "id", "(tenant, id)", "ctid"; "" when the rows cannot be located
    shown: str = "values not shown"
    # the earlier writes the count already applies (rows left as they are: still an error)
    after: tuple[Write, ...] = ()
    # earlier writes pgwarden cannot fold: today's count, a warning
    changed_by: tuple[Write, ...] = ()
    columns: tuple[str, ...] = ()  # a NOT NULL check's columns
    # not counted: (role, table) when the role may not read the table; `rows` is 0
    unreadable: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Locator:
    """How a check names a rejected row: its key's values (`expr` over alias `t`)."""

    key: str  # "id", "(tenant, id)", "ctid"; "" when there is nothing to locate rows by
    expr: sql.Composable | None
    columns: tuple[str, ...] = ()


_KEY = """
SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL
AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary HAVING bool_and(a.attnotnull)
ORDER BY i.indisprimary DESC, count(*), i.indexrelid LIMIT 1
"""


def _locator(conn: Any, rv: RangeVar, table: sql.Composable) -> _Locator:
    """The primary key of `rv`, else a unique key on NOT NULL columns, else `ctid` (only
    where `table` is the table itself: a CTE folding earlier writes has none)."""
    row = conn.execute(_KEY, (relname(rv),)).fetchone()
    cols = [str(c) for c in row[0]] if row and row[0] else []
    if not cols:
        if table != plain_table(rv):
            return _Locator("", None)
        return _Locator("ctid", sql.SQL("t.ctid::text"))
    if len(cols) == 1:
        expr: sql.Composable = sql.SQL("t.{}::text").format(sql.Identifier(cols[0]))
        return _Locator(cols[0], expr, tuple(cols))
    fields = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in cols)
    return _Locator(f"({', '.join(cols)})", sql.SQL("row({})::text").format(fields), tuple(cols))


def _sample(loc: _Locator, table: sql.Composable, cond: sql.Composable) -> sql.Composed:
    if loc.expr is None:
        return sql.SQL("SELECT NULL::text WHERE false").format()
    return sql.SQL("SELECT {} FROM {} AS t WHERE {} LIMIT 3").format(loc.expr, table, cond)


def _rows_where(
    step: Step,
    table: sql.Composable,
    cond: sql.Composable,
    what: str,
    loc: _Locator,
    shown: str = "values not shown",
    columns: tuple[str, ...] = (),
) -> _Check:
    return _Check(
        step,
        what,
        sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(table, cond),
        _sample(loc, table, cond),
        loc.key,
        shown,
        columns,
    )


def _nulls(step: Step, table: sql.Composable, label: str, cols: list[str], loc: _Locator) -> _Check:
    cond = sql.SQL(" OR ").join(sql.SQL("t.{} IS NULL").format(sql.Identifier(c)) for c in cols)
    return _rows_where(
        step,
        table,
        cond,
        f"NOT NULL on {label}({', '.join(cols)})",
        loc,
        f"NULL in {' or '.join(cols)}",
        tuple(cols),
    )


def _duplicates(
    step: Step, table: sql.Composable, label: str, cols: list[str], loc: _Locator
) -> _Check:
    ids = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    not_null = sql.SQL(" AND ").join(
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in cols
    )
    groups = sql.SQL(
        "SELECT {ids}, count(*) AS copies FROM {t} WHERE {nn} GROUP BY {ids} HAVING count(*) > 1"
    ).format(ids=ids, t=table, nn=not_null)
    mine = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in cols)
    # the rows sharing a value, copies side by side (ordered by the value, never shown)
    sample = (
        sql.SQL(
            "SELECT {e} FROM {t} AS t WHERE ({mine}) IN (SELECT {ids} FROM ({g}) AS d) "
            "ORDER BY {mine} LIMIT 4"
        ).format(e=loc.expr, t=table, mine=mine, ids=ids, g=groups)
        if loc.expr is not None
        else _sample(loc, table, sql.SQL("false"))
    )
    return _Check(
        step,
        f"UNIQUE on {label}({', '.join(cols)})",
        sql.SQL("SELECT coalesce(sum(copies), 0) FROM ({}) AS d").format(groups),
        sample,
        loc.key,
        "values not shown",
    )


_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = %s::regclass AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""


def _orphans(
    step: Step,
    table: sql.Composable,
    label: str,
    con: Constraint,
    conn: Any,
    src: _Source,
    loc: _Locator,
) -> _Check | None:
    fk_cols = strings(con.get("fk_attrs"))
    pk_cols = strings(con.get("pk_attrs"))
    if not pk_cols:  # REFERENCES t: the referenced table's primary key
        pk_cols = [str(r[0]) for r in conn.execute(_PRIMARY_KEY, (relname(con["pktable"]),))]
    if not pk_cols or len(pk_cols) != len(fk_cols):
        return None
    ref = src(con["pktable"])
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = t.{}").format(sql.Identifier(p), sql.Identifier(f))
        for p, f in zip(pk_cols, fk_cols, strict=True)
    )
    present = sql.SQL(" AND ").join(
        sql.SQL("t.{} IS NOT NULL").format(sql.Identifier(f)) for f in fk_cols
    )
    cond = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})").format(present, ref, match)
    what = f"FOREIGN KEY {label}({', '.join(fk_cols)}) -> {relname(con['pktable'])}"
    return _rows_where(step, table, cond, what, loc)


# (table, constraint) -> the step that VALIDATEs it; a NOT VALID constraint the plan adds
# and validates is counted when added, reported at its VALIDATE (rows written between the
# two must pass it already).
_Validations = dict[tuple[str, str], Step]

_NOT_VALID = """
SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
WHERE c.conrelid = to_regclass(%s) AND c.conname = %s AND NOT c.convalidated
AND c.contype IN ('c', 'f')
"""


def validations(plan: Plan) -> tuple[_Validations, set[tuple[str, str]]]:
    """The plan's VALIDATE CONSTRAINTs by (table, constraint), and the NOT VALID
    constraints it adds itself."""
    found: _Validations = {}
    added: set[tuple[str, str]] = set()
    for step in plan.steps:
        body = step.tree.get("AlterTableStmt")
        if body is None:
            continue
        label = relname(body["relation"])
        for cmd_node in body.get("cmds", ()):
            cmd = cmd_node.get("AlterTableCmd", {})
            con = cmd.get("def", {}).get("Constraint", {})
            if cmd.get("subtype") == "AT_ValidateConstraint":
                found.setdefault((label, str(cmd.get("name"))), step)
            elif con.get("skip_validation") and con.get("conname"):
                added.add((label, str(con["conname"])))
    return found, added


def _validated_elsewhere(
    step: Step, body: AlterTableStmt, conn: Any, added: set[tuple[str, str]]
) -> tuple[Step, AlterTableStmt, str] | None:
    """A VALIDATE CONSTRAINT of a NOT VALID constraint the database already has: the
    statement that would add it valid, as the server's definition reads (to count what
    VALIDATE scans), located at the VALIDATE."""
    from pgwarden.analysis.parse import parse

    rv = body["relation"]
    for cmd_node in body.get("cmds", ()):
        cmd = cmd_node.get("AlterTableCmd", {})
        name = str(cmd.get("name"))
        if cmd.get("subtype") != "AT_ValidateConstraint" or (relname(rv), name) in added:
            continue
        row = conn.execute(_NOT_VALID, (relname(rv), name)).fetchone()
        if row is None:
            continue
        definition = str(row[0]).removesuffix(" NOT VALID")
        text = (
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ")
            .format(sql.SQL(relname(rv)), sql.Identifier(name))
            .as_string(conn)
            + definition
        )
        tree = parse(text)[0].tree
        return step, tree["AlterTableStmt"], text
    return None


def _checks(
    step: Step,
    created: set[str],
    conn: Any,
    src: _Source,
    validate: tuple[_Validations, set[tuple[str, str]]] = ({}, set()),
) -> Iterator[_Check]:
    """The counts a step's new constraints need, reading each table through `src`."""
    index = step.tree.get("IndexStmt")
    if index is not None and index.get("unique"):
        rv = index["relation"]
        cols = [str(p["IndexElem"].get("name")) for p in index.get("indexParams", ())]
        if (
            relname(rv) not in created
            and all(c != "None" for c in cols)
            and not index.get("whereClause")
        ):
            table = src(rv)
            yield _duplicates(step, table, relname(rv), cols, _locator(conn, rv, table))
        return
    body = step.tree.get("AlterTableStmt")
    if body is None or relname(body["relation"]) in created:
        return
    elsewhere = _validated_elsewhere(step, body, conn, validate[1])
    if elsewhere is not None:
        yield from _alter_checks(elsewhere[0], elsewhere[1], elsewhere[2], conn, src, ({}, set()))
    yield from _alter_checks(step, body, step.sql, conn, src, validate)


def _alter_checks(
    step: Step,
    body: AlterTableStmt,
    text: str,
    conn: Any,
    src: _Source,
    validate: tuple[_Validations, set[tuple[str, str]]],
) -> Iterator[_Check]:
    rv = body["relation"]
    table, label = src(rv), relname(rv)
    loc = _locator(conn, rv, table)
    exprs = iter(check_expressions(text) if "CHECK" in text.upper() else [])
    for cmd_node in body.get("cmds", ()):
        cmd = cmd_node.get("AlterTableCmd", {})
        subtype = cmd.get("subtype")
        con = cmd.get("def", {}).get("Constraint", {})
        kind = con.get("contype")
        at = step
        if subtype == "AT_AddConstraint" and con.get("skip_validation"):
            # NOT VALID: existing rows are not checked now; they are at the VALIDATE
            later = validate[0].get((label, str(con.get("conname"))))
            if later is None:
                if kind == "CONSTR_CHECK":
                    next(exprs)
                continue
            at = later
        if subtype == "AT_SetNotNull":
            yield _nulls(step, table, label, [cmd["name"]], loc)
        elif subtype == "AT_AddConstraint" and kind == "CONSTR_CHECK":
            expr = next(exprs)
            cond = sql.SQL("NOT ({})").format(sql.SQL(expr))  # the migration's own SQL, read-only
            yield _rows_where(at, table, cond, f"CHECK ({expr}) on {label}", loc)
        elif subtype == "AT_AddConstraint" and kind in ("CONSTR_UNIQUE", "CONSTR_PRIMARY"):
            cols = strings(con.get("keys"))
            if cols and not con.get("indexname"):
                yield _duplicates(step, table, label, cols, loc)
                if kind == "CONSTR_PRIMARY":
                    yield _nulls(step, table, label, cols, loc)
        elif subtype == "AT_AddConstraint" and kind == "CONSTR_NOTNULL":
            yield _nulls(step, table, label, strings(con.get("keys")), loc)
        elif subtype == "AT_AddConstraint" and kind == "CONSTR_FOREIGN":
            check = _orphans(at, table, label, con, conn, src, loc)
            if check is not None:
                yield check
        elif subtype == "AT_AddColumn":
            col = cmd.get("def", {}).get("ColumnDef", {})
            kinds = {c.get("Constraint", {}).get("contype") for c in col.get("constraints") or ()}
            if (
                "CONSTR_NOTNULL" in kinds
                and "CONSTR_DEFAULT" not in kinds
                and not col.get("identity")
            ):
                yield _rows_where(
                    step,
                    table,
                    sql.SQL("true"),
                    f"new NOT NULL column {label}.{col.get('colname')} without a default",
                    loc,
                    f"{col.get('colname')} would be NULL",
                )


@dataclass(frozen=True, slots=True)
class _Planned:
    """A check as it reads today's rows, and as the plan's earlier writes leave them."""

    plain: _Check
    folded: sql.Composed | None  # the count over the folded tables (WITH ... SELECT)
    folded_sample: sql.Composed | None
    folds: tuple[Write, ...]
    opaque: tuple[Write, ...]


def _plan_checks(
    step: Step,
    created: set[str],
    conn: Any,
    writes: Sequence[Write],
    validate: tuple[_Validations, set[tuple[str, str]]],
) -> Iterator[_Planned]:
    plain = list(_checks(step, created, conn, plain_table, validate))
    if not plain or not writes:
        yield from (_Planned(c, None, None, (), ()) for c in plain)
        return
    sources = Sources(writes, conn)
    folded = list(_checks(step, created, conn, sources.table, validate))
    prefix = sources.prefix()
    for p, f in zip(plain, folded, strict=True):
        if sources.opaque:
            yield _Planned(p, None, None, (), tuple(sources.opaque))
        elif sources.folded:
            count = sql.Composed([prefix, f.count])
            sample = sql.Composed([prefix, f.sample])
            yield _Planned(p, count, sample, tuple(sources.folded), ())
        else:
            yield _Planned(p, None, None, (), ())


def _count(
    conn: Any, what: str, count: sql.Composed, sample: sql.Composed, timeout_ms: int
) -> tuple[int, tuple[str, ...]] | None:
    """(rows, a few of them); None when an object is created by an earlier step."""
    import psycopg

    conn.execute("SAVEPOINT preflight")
    try:
        row = conn.execute(count).fetchone()
        rows = int(str(row[0])) if row and row[0] is not None else 0
        rows_sample = tuple(str(r[0])[:80] for r in conn.execute(sample)) if rows else ()
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT preflight")
        if isinstance(exc, psycopg.errors.QueryCanceled):
            raise DatabaseError(
                f"preflight check for {what} timed out after {timeout_ms} ms",
                hint="run it against a replica with more time, or lint without --database-url",
                sqlstate=exc.sqlstate,
            ) from None
        if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
            return None  # the object is created by an earlier step of this plan
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            raise _Unreadable(_denied_table(exc)) from None
        raise
    return rows, rows_sample


class _Unreadable(Exception):
    """The role may not read a table a check counts (SQLSTATE 42501): the table's name."""


def _denied_table(exc: Exception) -> str:
    """The table the server says is denied ("permission denied for table invoices")."""
    import re

    diag = getattr(exc, "diag", None)
    text = str(getattr(diag, "message_primary", None) or exc)
    found = re.search(r"permission denied for (?:table|relation|view) (\S+)", text)
    return found.group(1) if found else "a table the check reads"


def find_violations(
    plan: Plan,
    dsn: str,
    *,
    timeout_ms: int = 30_000,
    opaque: Sequence[tuple[int, Write]] = (),
) -> list[Violation]:
    """Run the counting queries read-only on `dsn`; one Violation per failing check.

    `opaque`: (index of the step it runs before, write) for code the plan does not show
    (a Django RunPython), which may change any table.
    """
    import psycopg

    found: list[Violation] = []
    with connect(dsn, autocommit=False) as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(timeout_ms)))
        created: set[str] = set()
        writes: list[Write] = unfinished_backfills(conn)
        planned: list[_Planned] = []
        validate = validations(plan)
        for step in plan.steps:
            writes += [w for before, w in opaque if before == step.index]
            unread = unread_body(step)
            if step.inner and unread is not None:
                writes.append(unread)  # somewhere in the body: before any statement of it
            # a DO block's (or a called procedure's) statements are checked one by one
            for part in step.inner or (step,):
                try:
                    own = added_columns(part)  # ADD COLUMN zz, ALTER COLUMN zz SET NOT NULL
                    with conn.transaction():
                        planned.extend(_plan_checks(part, created, conn, [*writes, *own], validate))
                except psycopg.errors.UndefinedTable:
                    pass  # the referenced table is created by this plan
                created.update(c.removeprefix("public.") for c in part.effects.creates)
                writes += step_writes(part)
        for p in planned:
            found += _violations(conn, p, timeout_ms)
        conn.rollback()
    return found


def _violations(conn: Any, p: _Planned, timeout_ms: int) -> Iterator[Violation]:
    """The check's Violation, if rows break it; one saying it was not counted when the
    role may not read a table it reads (the other checks go on)."""
    check = p.plain
    try:
        yield from _counted(conn, p, timeout_ms)
    except _Unreadable as denied:
        row = conn.execute("SELECT current_user").fetchone()
        role = str(row[0]) if row else "this role"
        yield Violation(
            check.step, check.what, 0, (), check.key, unreadable=(role, str(denied.args[0]))
        )


def _relevant(folds: tuple[Write, ...], check: _Check) -> tuple[Write, ...]:
    """The earlier writes that may change what `check` reads: not an ADD COLUMN or ALTER
    COLUMN TYPE of a column other than the ones it reads (when it names them)."""
    return tuple(
        w
        for w in folds
        if not (check.columns and w.kind in ("add", "retype"))
        or any(c in check.columns for c, _ in w.sets)
    )


def _counted(conn: Any, p: _Planned, timeout_ms: int) -> Iterator[Violation]:
    import psycopg

    check = p.plain
    if p.folded is not None and p.folded_sample is not None:
        try:
            with conn.transaction():
                got = _count(conn, check.what, p.folded, p.folded_sample, timeout_ms)
        except psycopg.Error:  # the earlier statement's SQL does not read as a query here
            got = None
        if got is not None:
            if got[0]:
                yield _violation(check, got, after=_relevant(p.folds, check))
            return
    got = _count(conn, check.what, check.count, check.sample, timeout_ms)
    if got is not None and got[0]:
        changed = p.opaque or _relevant(p.folds, check)  # a fold that did not evaluate: opaque
        yield _violation(check, got, changed_by=changed)


def _violation(
    check: _Check,
    got: tuple[int, tuple[str, ...]],
    *,
    after: tuple[Write, ...] = (),
    changed_by: tuple[Write, ...] = (),
) -> Violation:
    """The violation `check` counted: `got` is (rows, sample)."""
    return Violation(
        check.step,
        check.what,
        got[0],
        got[1],
        check.key,
        check.shown,
        after=after,
        changed_by=changed_by,
        columns=check.columns,
    )


def _where(writes: Sequence[Write]) -> str:
    return ", ".join(
        f"{w.what} at {w.location.path}:{w.location.line}" if w.location else w.what for w in writes
    )


def _located(v: Violation) -> str:
    """Where a few of the rows are, by key only: "e.g. id 20, 45 (NULL in status)"."""
    if not v.sample:
        return f"rows not located: the table has no primary or unique NOT NULL key ({v.shown})"
    return f"e.g. {v.key} {', '.join(v.sample)} ({v.shown})"


def _finding(v: Violation) -> Finding:
    if v.unreadable is not None:
        role, table = v.unreadable
        return Finding(
            code=CODE,
            name=NAME,
            severity=Severity.WARNING,
            message=f"check skipped: role {role} lacks SELECT on {table}, so the rows that "
            f"would violate {v.what} were not counted; the migration may still fail at this "
            "statement",
            help=f"GRANT SELECT ON {table} TO {role} (a read-only role on a replica is enough), "
            "or lint with a --database-url whose role may read it",
            location=v.step.location,
            step=v.step.index,
        )
    e_g = f"; {_located(v)}"
    if v.changed_by:
        return Finding(
            code=CODE,
            name=NAME,
            severity=Severity.WARNING,
            message=f"{v.rows:,} row(s) violate {v.what} today; {_where(v.changed_by)} "
            f"may change them first: check it fixes them, else the migration fails at this "
            f"statement{e_g}",
            help="make sure the earlier statement leaves no such row (or fix the data in an "
            "earlier deploy with pgwarden backfill), then add the constraint",
            location=v.step.location,
            step=v.step.index,
        )
    after = f" after {_where(v.after)}" if v.after else ""
    null_adds = [
        w.sets[0][0]
        for w in v.after
        if w.kind == "add" and w.sets[0][1] == "NULL" and w.sets[0][0] in v.columns
    ]
    if null_adds:
        help_ = (
            f"ADD COLUMN {null_adds[0]} without a default leaves it NULL in every existing "
            f"row: give it a DEFAULT (ADD COLUMN ... NOT NULL DEFAULT ... needs no rewrite on "
            "PostgreSQL 11+), or fill it (pgwarden backfill) before adding the constraint"
        )
    elif any(w.kind in ("update", "delete") for w in v.after):
        help_ = (
            "the earlier statement leaves these rows as they are: widen its WHERE / SET to "
            "fix them, then add the constraint"
        )
    else:
        help_ = (
            "fix the data first (pgwarden backfill, in an earlier deploy), then add the constraint"
        )
    return Finding(
        code=CODE,
        name=NAME,
        severity=Severity.ERROR,
        message=f"{v.rows:,} existing row(s) violate {v.what}{after}: the migration will fail "
        f"at this statement{e_g}",
        help=help_,
        location=v.step.location,
        step=v.step.index,
    )


def preflight(
    plan: Plan, dsn: str, *, timeout_ms: int = 30_000, opaque: Sequence[tuple[int, Write]] = ()
) -> list[Finding]:
    """PW401 findings for rows that the plan's new constraints would reject."""
    found = find_violations(plan, dsn, timeout_ms=timeout_ms, opaque=opaque)
    return [_finding(v) for v in found]


def planner_rows(
    plan: Plan, dsn: str, *, timeout_ms: int = 30_000, lock_ms: int = 1_000
) -> dict[int, tuple[float, float]]:
    """Rows each UPDATE/DELETE with a WHERE would touch, from EXPLAIN (never executed).

    Step index -> (planned rows, the table's rows as the planner counts them). Each
    EXPLAIN runs in its own short read-only transaction: planning an UPDATE takes ROW
    EXCLUSIVE on its table, held only that long and waited for at most `lock_ms`.
    Statements on tables the plan creates are left out.
    """
    import psycopg

    out: dict[int, tuple[float, float]] = {}
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(timeout_ms)))
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(lock_ms)))
        created: set[str] = set()
        for step in plan.steps:
            body = step.tree.get("UpdateStmt") or step.tree.get("DeleteStmt")
            if (
                body is not None
                and body.get("whereClause")
                and relname(body["relation"]) not in created
            ):
                explain = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(step.sql))
                try:
                    with conn.transaction():
                        row = conn.execute(explain).fetchone()
                        # The planner's rows of the whole table, on the same footing as
                        # its estimate (reltuples scaled to the table's current pages).
                        whole = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}")
                        total = conn.execute(whole.format(plain_table(body["relation"]))).fetchone()
                except psycopg.Error:
                    continue  # a column an earlier step adds, a lock not granted: stats decide
                rows = _modified_rows(row[0] if row else None)
                table_rows = _modified_rows(total[0] if total else None)
                if rows is not None and table_rows is not None:
                    out[step.index] = (rows, max(rows, table_rows))
            created.update(c.removeprefix("public.") for c in step.effects.creates)
    return out


def _modified_rows(doc: object) -> float | None:
    """The planned rows of the top node, or of the scan under a ModifyTable node (EXPLAIN's
    JSON, not a parse tree: read with subscripts)."""
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict) or "Plan" not in doc[0]:
        return None
    node = doc[0]["Plan"]
    if isinstance(node, dict) and node["Node Type"] == "ModifyTable" and node["Plans"]:
        node = node["Plans"][0]
    rows = node["Plan Rows"] if isinstance(node, dict) and "Plan Rows" in node else None
    return float(rows) if isinstance(rows, int | float) else None
