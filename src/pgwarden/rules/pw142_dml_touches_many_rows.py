"""An UPDATE or DELETE with a WHERE clause that touches most of a large table.

## What it does
Estimates how many rows an `UPDATE ... WHERE` or `DELETE ... WHERE` on an
existing table touches: with `--database-url` (a replica, read-only) from the
planner (`EXPLAIN`, never executed); with `--stats` from the column statistics
the snapshot keeps (null fraction, distinct values, most common values,
histogram bounds) for `col = const`, `col IN (...)`, `col IS [NOT] NULL`,
`col < const` and the like, combined with AND, OR and NOT (the snapshot keeps
values of numbers, dates, booleans and enums, and of text columns with at most
100 distinct values whose name does not look private). More rows than
`dml_max_rows` (default 100,000), or more than `dml_max_share` (default 0.1)
of a large or busy table, in one statement is an error. A column the plan added
earlier without a default is NULL in every existing row, so the backfill
`UPDATE t SET c = ... WHERE c IS NULL` touches them all (the planner cannot
say: the column does not exist yet). Without stats or a database the size is
unknown and a note says so, unless the WHERE is one that real rows all meet:
a time column before the current time (`viewed_at < now()`; not one named for
instants to come, `expires_at`, `valid_until`, `scheduled_for`, whose cleanup
of the passed ones stays of unknown size) or before a date in 2100 or later,
a key (`id`, `*_id`) `> 0`, `>= 1` or `IS NOT NULL`, only
the join to another table (`UPDATE t SET ... FROM u WHERE u.id = t.u_id`; not
to a CTE or a subquery, whose rows the migration picked), or
a column the same file added just before: `IS NULL` of one added without a
default, `= <its default>` or `IS NOT NULL` of one added with a constant
default (the backfill right after `ADD COLUMN`); that is graded as if the
WHERE were missing. (A missing or constant-true
WHERE is PW140.) The UPDATEs and DELETEs of data-modifying WITH queries
(`WITH moved AS (DELETE FROM t WHERE ... RETURNING *) INSERT INTO ...`) are
judged the same way. A column the plan added is no longer assumed NULL (or its
default) everywhere once an UPDATE set it, rows were inserted or copied in, or
its type changed.

## Why is this bad?
Every row the statement changes stays locked until COMMIT, so concurrent
writes to those rows wait; an UPDATE writes a new version of each row (a WAL
burst that replicas replay, bloat until vacuum); a long transaction holds back
vacuum everywhere. A selective-looking WHERE (`WHERE status = 'open'`,
`WHERE created_at < now()`) often matches most of the table.

## Example
```sql
UPDATE invoices SET currency = 'EUR' WHERE currency IS NULL;  -- 4.8M of 5M rows
```

## Use instead
```sql
UPDATE invoices SET currency = 'EUR'
WHERE id >= 1 AND id < 10001 AND currency IS NULL;
-- ... and so on, one short transaction per batch
```
Batch it by primary-key range, each batch its own short transaction, outside
the schema migration: `pgwarden backfill` does this with throttling and resumes
where it stopped; or a keyed loop that commits per batch (Alembic:
`autocommit_block()`; Django: `RunPython` with `atomic = False`).

## Fix safety
No mechanical fix.

## References
https://www.postgresql.org/docs/current/planner-stats.html
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.nodes import DeleteStmt, Node, UpdateStmt, WithClause, strings
from pgwarden.analysis.selectivity import literal, nearly_every_row, selectivity
from pgwarden.findings import Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import dml_parts, regclass
from pgwarden.rules.base import Hit, LintContext, Rule
from pgwarden.rules.pw140_whole_table_update_or_delete import always_true

_HELP = (
    "batch it by primary-key range, one short transaction per batch, outside the schema "
    "migration: pgwarden backfill, or a keyed loop that commits per batch"
)


def _estimate(
    step: Step, ctx: LintContext, table: str, body: UpdateStmt | DeleteStmt, own: bool
) -> tuple[float, float, str] | None:
    """(rows touched, rows of the table, where the figure comes from), or None when unknown.
    `own`: the statement's own UPDATE/DELETE (the planner's figure is for it), not a WITH's."""
    planned = ctx.dml.planner_rows.get(step.index) if own else None
    if planned is not None:
        return planned[0], planned[1], "planner estimate"
    if ctx.snapshot is None or "whereClause" not in body:
        return None
    stats = ctx.snapshot.table(table)
    if stats is None:
        return None
    columns = ctx.snapshot.stats.columns.get(stats.name, {})
    added = ctx.added_null.get(table)
    if added:  # added earlier in the plan without a default: NULL in every existing row
        from pgwarden.pg.stats import ColumnStats  # loaded with the snapshot already

        columns = {**columns, **{c: ColumnStats(null_frac=1.0, n_distinct=0.0) for c in added}}
    share = selectivity(
        body["whereClause"],
        columns,
        stats.rows,
        _taken_at(ctx.snapshot),
        _join_names(body, _cte_names(step)),
    )
    if share is None:
        return None
    return share * stats.rows, float(stats.rows), "estimate from column statistics"


def _join_names(
    body: UpdateStmt | DeleteStmt, outer: frozenset[str] = frozenset()
) -> frozenset[str] | None:
    """The names the target goes by when the statement joins other tables, else None
    (also when it joins a CTE or a subquery: a set of rows picked by the migration, which
    need not hold a match for every target row). `outer`: the CTE names of the statement
    the UPDATE/DELETE is a WITH query of (`WITH batch AS (... LIMIT n), u AS (UPDATE ...
    FROM batch ...)`: a batch loop's step, not a join with a table)."""
    joined: list[Node] = [
        *(cast("UpdateStmt", body).get("fromClause") or ()),
        *(cast("DeleteStmt", body).get("usingClause") or ()),
    ]
    if not joined:
        return None
    with_: WithClause = body.get("withClause") or {}
    ctes = {c.get("CommonTableExpr", {}).get("ctename") for c in with_.get("ctes") or ()}
    ctes |= outer
    for item in joined:
        table = item.get("RangeVar")
        if table is None or (not table.get("schemaname") and table.get("relname") in ctes):
            return None
    rel = body.get("relation")
    if not isinstance(rel, dict):
        return None
    alias = rel.get("alias")
    name = alias.get("aliasname") if isinstance(alias, dict) else rel.get("relname")
    return frozenset({str(name)})


def _cte_names(step: Step) -> frozenset[str]:
    """The names of the WITH queries of the statement (its own WITH, not nested ones)."""
    with_ = cast("WithClause | None", cast("dict[str, object]", step.body).get("withClause"))
    if not with_:
        return frozenset()
    return frozenset(
        str(c.get("CommonTableExpr", {}).get("ctename")) for c in with_.get("ctes") or ()
    )


def _taken_at(snapshot: Snapshot) -> datetime | None:
    """When the snapshot was taken (the statement's 'now' for its statistics), in UTC."""
    try:
        moment = datetime.fromisoformat(snapshot.stats.taken_at)
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _int(node: Node) -> int | None:
    const = node.get("A_Const")
    return const["ival"].get("ival", 0) if const is not None and "ival" in const else None


def _key_span(where: Node) -> int | None:
    """Width of an integer range `col >= a AND col < b` (or BETWEEN) a WHERE bounds."""
    spans = _key_spans(where)
    return min(spans.values()) if spans else None


def _unique_span(where: Node, ctx: LintContext, table: str) -> int | None:
    """The narrowest integer range the WHERE bounds on a column the catalog shows unique
    by itself (a primary key): no more rows than its width can match."""
    spans = _key_spans(where)
    unique = _unique_columns(ctx, table) if spans else set()
    widths = [w for col, w in spans.items() if col.rsplit(".", 1)[-1] in unique]
    return min(widths) if widths else None


def _unique_columns(ctx: LintContext, table: str) -> set[str]:
    """The columns the catalog shows unique by themselves (a primary key, a unique index)."""
    cat = ctx.snapshot.catalog if ctx.snapshot is not None else None
    rel = cat.get(table) if cat is not None else None
    return {
        ix.columns[0]
        for ix in (rel.indexes if rel is not None else ())
        if (ix.unique or ix.primary) and ix.valid and len(ix.columns) == 1
    }


def few_rows(where: Node | None, ctx: LintContext, table: str) -> bool:
    """Whether `where` pins a handful of rows by a key: `id = c` or `id IN (c, ...)` (or a
    column the catalog shows unique by itself), or an integer range of at most
    `dml_max_rows` on such a key (one batch of a keyed loop)."""
    if not where:
        return False
    unique = {"id"} | _unique_columns(ctx, table)
    spans = _key_spans(where)
    if any(c.rsplit(".", 1)[-1] in unique and w <= ctx.dml.max_rows for c, w in spans.items()):
        return True
    boolean = where.get("BoolExpr")
    conjuncts = [where]
    if boolean is not None and boolean.get("boolop") == "AND_EXPR":
        conjuncts = boolean.get("args", [])
    for node in conjuncts:
        expr = node.get("A_Expr")
        if expr is None or strings(expr.get("name")) != ["="]:
            continue
        col = strings(expr.get("lexpr", {}).get("ColumnRef", {}).get("fields"))
        if not col or col[-1] not in unique:
            continue
        right = expr.get("rexpr", {})
        items = right.get("List", {}).get("items") if expr.get("kind") == "AEXPR_IN" else [right]
        if items and len(items) <= ctx.dml.max_rows and all(literal(i) is not None for i in items):
            return True
    return False


def _key_spans(where: Node) -> dict[str, int]:
    """Column -> width of the integer range `col >= a AND col < b` (or BETWEEN) the WHERE
    bounds it to."""
    conjuncts = [where]
    boolean = where.get("BoolExpr")
    if boolean is not None and boolean.get("boolop") == "AND_EXPR":
        conjuncts = boolean.get("args", [])
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    for node in conjuncts:
        expr = node.get("A_Expr")
        if expr is None or "ColumnRef" not in expr.get("lexpr", {}):
            continue
        col = ".".join(strings(expr["lexpr"]["ColumnRef"].get("fields")))
        op = "".join(strings(expr.get("name")))
        if expr.get("kind") == "AEXPR_BETWEEN":
            bounds = [_int(b) for b in expr.get("rexpr", {}).get("List", {}).get("items", [])]
            if len(bounds) == 2 and bounds[0] is not None and bounds[1] is not None:
                low[col], high[col] = bounds[0], bounds[1] + 1
            continue
        value = _int(expr.get("rexpr", {}))
        if value is None or expr.get("kind") != "AEXPR_OP":
            continue
        if op in (">", ">="):
            low[col] = value + (op == ">")
        elif op in ("<", "<="):
            high[col] = value + (op == "<=")
    return {c: high[c] - low[c] for c in low if c in high}


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    for i, (kind, body) in enumerate(dml_parts(step)):
        where = body.get("whereClause")
        if where and not always_true(where):  # else PW140
            yield from _touches(step, ctx, kind, body, where, own=i == 0 and kind == step.kind)


def _touches(
    step: Step, ctx: LintContext, kind: str, body: UpdateStmt | DeleteStmt, where: Node, own: bool
) -> Iterator[Hit]:
    table = regclass(body.get("relation"))
    judged = ctx.judge(table)
    if judged.severity is None or judged.severity is Severity.NOTE:
        return  # created in this plan, or small: a few rows, whatever the WHERE
    verb = ("" if own else "its WITH query ") + ("updates" if kind == "UpdateStmt" else "deletes")
    est = _estimate(step, ctx, table, body, own)
    if est is None:
        span = _key_span(where)
        if span is not None and span <= ctx.dml.max_rows:
            return  # one batch of a keyed loop: at most `span` rows of a unique key
        reason = nearly_every_row(
            where,
            _join_names(body, _cte_names(step)) or frozenset(),
            nulls=frozenset(ctx.added_null.get(table, ())),
            defaults=ctx.added_default.get(table),
        )
        if reason is not None:
            yield Hit(
                message=f"{verb} nearly every row of {table} in one statement: {reason}, so "
                "each row stays locked until COMMIT and concurrent writes to them wait; "
                f"{table}: {judged.size}",
                help=_HELP,
                severity=judged.severity,
            )
            return
        noted = ctx.state.setdefault("PW142", set())
        assert isinstance(noted, set)
        if step.location.path in noted:
            return  # one note per file: the same words on every UPDATE would be noise
        noted.add(step.location.path)
        why = (
            "no stats given"
            if ctx.snapshot is None
            else "the stats snapshot has no statistics for this table or condition"
        )
        yield Hit(
            message=f"{verb} rows of {table} matching its WHERE clause: how many is unknown "
            f"({why}); if it is most of the table, every row stays locked until COMMIT "
            "(said once per file, for every UPDATE/DELETE whose size is unknown)",
            help="lint with --stats (pgwarden stats dump) or --database-url (a replica) to "
            f"estimate it; if it is many rows, {_HELP}",
            severity=Severity.NOTE,
        )
        return
    rows, total, source = est
    span = _unique_span(where, ctx, table)
    if span is not None and span < rows:  # a keyed batch: the key bounds what it touches
        rows, source = float(max(span, 0)), f"at most the {span:,} keys its WHERE spans"
    share = rows / total if total > 0 else 0.0
    limits = ctx.dml
    too_many = rows > limits.max_rows
    too_large_share = share > limits.max_share
    if not (too_many or too_large_share):
        return
    severity = Severity.ERROR if too_many or judged.severity is Severity.ERROR else Severity.WARNING
    limit = (
        f"more than dml_max_rows = {limits.max_rows:,}"
        if too_many
        else f"more than dml_max_share = {limits.max_share:g} of the table"
    )
    yield Hit(
        message=f"{verb} about {rows:,.0f} of {total:,.0f} rows of {table} ({share:.0%}, "
        f"{source}) in one statement, {limit}: each row stays locked until COMMIT, so "
        "concurrent writes to them wait, and "
        + (
            "a new version of each is written (WAL burst, replica lag, bloat)"
            if step.kind == "UpdateStmt"
            else "dead rows fill the table until vacuum"
        )
        + f"; {table}: {judged.size}",
        help=_HELP,
        severity=severity,
    )


RULE = Rule(
    code="PW142",
    name="dml-touches-many-rows",
    summary="UPDATE or DELETE whose WHERE matches many rows of a large table in one statement",
    doc=__doc__ or "",
    check=check,
    kinds=frozenset({"UpdateStmt", "DeleteStmt", "SelectStmt", "InsertStmt"}),
)
