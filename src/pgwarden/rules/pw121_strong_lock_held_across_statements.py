"""Keeps a blocking lock from an earlier statement while a later, slow statement runs.

## What it does
Flags a statement that reads, rewrites or updates a whole existing relation
(a scan, a rewrite, an index build, a validation, a backfill UPDATE or
DELETE; not one that picks a few rows by key: `id = 7`, `id IN (...)`, a
keyed batch `id >= a AND id < b`, or a column the catalog shows unique;
not the rewrite of a sequence by `ALTER SEQUENCE ... AS bigint`, one page;
nor a `TRUNCATE`, which swaps in new empty files whatever the table's size;
nor one that cannot run in a transaction block, which fails at once there: PW130)
when an earlier statement of the same transaction took a lock that blocks
reads or writes on an existing table (not one the transaction dropped: what
waits for it fails anyway; not a sequence or a composite type), and this
statement does not take that lock itself. The transaction is the `BEGIN ... COMMIT` written in
the file or, by default, the one transaction the migration runner wraps each
file in. In a file whose tool holds a transaction around it (Flyway,
golang-migrate and sqlx `*.up.sql`, diesel, Prisma, dbmate) a `BEGIN` starts
none: what runs before it shares its block. A finding names the first three
such locks and counts the rest.

## Why is this bad?
A lock is released at COMMIT, not when the statement that took it ends. A
quick `ALTER TABLE ... ADD COLUMN` takes ACCESS EXCLUSIVE for a moment; if
the same transaction then backfills the column, validates a constraint or
builds an index, that ACCESS EXCLUSIVE stays held for the whole slow step and
nobody can read or write the table. This is how `NOT VALID` followed by
`VALIDATE` in one transaction loses the benefit of `NOT VALID`.

## Example
```sql
BEGIN;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive
    CHECK (amount_cents > 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
COMMIT;
```

## Use instead
```sql
BEGIN;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive
    CHECK (amount_cents > 0) NOT VALID;
COMMIT;
BEGIN;
ALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;
COMMIT;
```
Give the slow statement a transaction of its own: commit right after the
statement that takes the strong lock. Alembic: put them in separate
revisions (or use `transaction_per_migration` and an `autocommit_block()`).
Django: separate migrations, or `atomic = False` and one `RunSQL` per step.
With `pgwarden lint`, files run as one transaction each unless you pass
`--no-file-transaction`.

## Fix safety
No mechanical fix: splitting a transaction changes what a failure leaves
behind, so decide where to commit by hand.

## References
https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import CommonTableExpr, InsertStmt, Node, WithClause, range_vars
from pgwarden.findings import Severity
from pgwarden.plan import Step, TxMode
from pgwarden.rules._sql import TABLE_KINDS, how_long, qualified, regclass, tx_words
from pgwarden.rules.base import LONG_LOCK_S, Hit, LintContext, Rule, describe_lock
from pgwarden.rules.pw104_table_rewritten_under_lock import maybe_in_place
from pgwarden.rules.pw142_dml_touches_many_rows import few_rows

_TABLE_KINDS = frozenset(TABLE_KINDS)
# Locks named in a finding; the rest are counted. Naming every earlier lock made the
# findings of a long transaction grow with the square of its length.
NAMED = 3
_DML = {"UpdateStmt": "updates", "DeleteStmt": "deletes", "InsertStmt": "inserts"}


def _slow(step: Step, ctx: LintContext) -> tuple[str, float | None, bool] | None:
    """What makes `step` take long on existing data, its estimated seconds, and whether it
    is only a rewrite that real migrations mostly avoid (a type change from a type not
    known: PW104's 'may rewrite')."""
    if step.kind == "TruncateStmt":
        return None  # new empty files swapped in: quick at any size (0.75 ms for 2M rows)
    kinds = {lk.relation: lk.relkind for lk in step.effects.locks}
    existing = [
        r
        for r in (*step.effects.rewrites, *step.effects.scans)
        if qualified(r) not in ctx.created and kinds.get(r) != "sequence"  # one 8 kB page
    ]
    altered = step.tree.get("AlterTableStmt") if existing else None
    if altered is not None and qualified(regclass(altered.get("relation"))) in ctx.created:
        # A foreign key from a table created earlier in the plan checks that table's (few)
        # rows only: measured, 0.7 ms and no tuple of a 3M-row referenced table read.
        existing = []
    if existing:
        rels = list(dict.fromkeys(existing, True))
        rewrites = set(step.effects.rewrites)
        work = "index" if step.kind == "IndexStmt" else "scan"
        times = [ctx.duration(r, kind="rewrite" if r in rewrites else work) for r in rels]
        est = sum(t for t in times if t is not None) if all(t is not None for t in times) else None
        if not rewrites & set(rels):
            return f"reads all of {', '.join(rels)}", est, False
        maybe = set(step.effects.scans) <= rewrites and maybe_in_place(step, ctx)
        return f"{'may rewrite' if maybe else 'rewrites'} {', '.join(rels)}", est, maybe
    insert = step.tree.get("InsertStmt")
    changed = step.tree.get("UpdateStmt") or step.tree.get("DeleteStmt")
    dml = insert or changed
    if dml is not None:
        table = regclass(dml.get("relation"))
        if insert is not None:
            select = insert.get("selectStmt", {}).get("SelectStmt", {})
            if not range_vars(select, []):
                return None  # INSERT ... VALUES (or SELECT of no table): a few rows
            if qualified(table) not in ctx.created:
                return f"copies rows into {table}", None, False
            # into a table the plan created: the copy reads its existing sources whole
            read = _existing_sources(insert, ctx)
            if not read or few_rows(select.get("whereClause"), ctx, read[0]):
                return None
            return f"reads all of {', '.join(read)} to copy rows into {table}", None, False
        if qualified(table) in ctx.created:
            return None
        where = (changed or {}).get("whereClause")
        if where is not None and few_rows(where, ctx, table):
            return None  # by key: a handful of rows, quick
        whole = not where
        est = ctx.duration(table, rewrite=True) if whole else None
        rows = "every row" if whole else "rows"
        return f"{_DML[step.kind]} {rows} of {table}", est, False
    return None


def _existing_sources(insert: InsertStmt, ctx: LintContext) -> list[str]:
    """The existing tables an INSERT ... SELECT reads (not its WITH queries, not tables
    the plan created), in order."""
    select: Node = insert.get("selectStmt") or {}
    ctes: set[str] = set()
    parts = [cast("dict[str, object]", insert)]
    inner = select.get("SelectStmt")
    if inner is not None:
        parts.append(cast("dict[str, object]", inner))
    for part in parts:
        with_ = cast("WithClause | None", part.get("withClause"))
        for cte in (with_ or {}).get("ctes") or ():
            common: CommonTableExpr = cte.get("CommonTableExpr") or {}
            ctes.add(str(common.get("ctename")))
    names: list[str] = [
        regclass(rv)
        for rv in range_vars(select, [])
        if rv.get("schemaname") or rv.get("relname") not in ctes
    ]
    return [n for n in dict.fromkeys(names, True) if qualified(n) not in ctx.created]


CODE = "PW121"
Entry = tuple[LockMode, Step]  # a ctx.held value: the strongest mode and the step that took it
_SEVERITY = {s.rank: s for s in Severity}


@dataclass(slots=True)
class _Held:
    """The locks one transaction holds that block writes on a table, in `ctx.held` order."""

    log_at: int  # how much of _State.created this transaction has seen
    # relation -> (place in ctx.held, the ctx.held entry last filed)
    seen: dict[str, tuple[int, object]] = field(default_factory=dict)
    blocking: list[tuple[int, str]] = field(default_factory=list)  # (place, relation), sorted
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)  # severity rank: short, long
    gone: set[str] = field(default_factory=set)  # created or dropped since: not counted
    counts: tuple[dict[int, int], dict[int, int]] = field(default_factory=lambda: ({}, {}))
    version: int = 0  # changes whenever the above or a filed ctx.held entry changes
    # What findings said about these locks at `said_at`, by what else shapes the words:
    # the statements of a long transaction repeat them.
    said: dict[tuple[object, ...], _Said | None] = field(default_factory=dict)
    said_at: int = 0


@dataclass(frozen=True, slots=True)
class _Said:
    """The part of a finding that names the held locks."""

    worst: Severity
    count: int
    locks: str
    sizes: str


@dataclass(slots=True)
class _State:
    """What `observe` saw since the last look-up, and each transaction's blocking locks."""

    txs: dict[int, _Held] = field(default_factory=dict)
    locked: list[tuple[int, str]] = field(default_factory=list)  # (transaction, relation)
    # every relation created or dropped, in order: no longer a table traffic waits for
    created: list[str] = field(default_factory=list)


def _state(ctx: LintContext) -> _State:
    state = ctx.state.get(CODE)
    if not isinstance(state, _State):
        state = ctx.state[CODE] = _State()
    return state


def observe(step: Step, ctx: LintContext) -> None:
    """Note what `step` locks and creates; `_held` files it when a slow statement asks."""
    state = _state(ctx)
    tx = step.transaction
    if tx is not None:
        locked = state.locked
        for lock in step.effects.locks:
            locked.append((tx, lock.relation))
    for name in step.effects.creates:
        state.created.append(qualified(name))
    for what in step.effects.destroys:  # a dropped table: what waits for it fails anyway
        if what.startswith("table "):
            state.created.append(qualified(what[6:]))


def _count(held: _Held, rel: str, sign: int) -> None:
    for counts, rank in zip(held.counts, held.ranks[rel], strict=True):
        counts[rank] = counts.get(rank, 0) + sign


def _file(ctx: LintContext, held: _Held, place: int, rel: str, entry: Entry) -> None:
    """Judge `rel`'s entry in ctx.held (new, or taken again in a stronger mode)."""
    mode, earlier = entry
    blocks = mode.blocks_writes and any(
        lk.relation == rel and lk.relkind in _TABLE_KINDS for lk in earlier.effects.locks
    )
    if blocks and rel not in held.ranks:
        insort(held.blocking, (place, rel))
        if qualified(rel) in ctx.created or rel in ctx.dropped or qualified(rel) in ctx.dropped:
            held.ranks[rel] = (0, 0)
            held.gone.add(rel)
            return
        short, long = ctx.judge(rel).severity, ctx.judge(rel, lock_s=LONG_LOCK_S).severity
        held.ranks[rel] = (short.rank if short else 0, long.rank if long else 0)
        _count(held, rel, 1)
    elif not blocks and rel in held.ranks:
        held.blocking.remove((place, rel))
        if rel not in held.gone:
            _count(held, rel, -1)
        held.gone.discard(rel)
        del held.ranks[rel]


def _held(ctx: LintContext, tx: int) -> _Held | None:
    """Transaction `tx`'s blocking locks, brought up to date with the steps observed since."""
    state = _state(ctx)
    for t, rel in state.locked:
        held = state.txs.get(t)
        if held is None:
            held = state.txs[t] = _Held(log_at=len(state.created))
        entry = ctx.held[t][rel]
        seen = held.seen.get(rel)
        if seen is None:
            place = len(held.seen)
        elif seen[1] is entry:
            continue  # taken again, no stronger than before
        else:
            place = seen[0]
        held.seen[rel] = (place, entry)
        _file(ctx, held, place, rel, entry)
        held.version += 1
    state.locked.clear()
    held = state.txs.get(tx)
    if held is not None:
        for name in state.created[held.log_at :]:
            for rel in (name, f"public.{name}"):
                if rel in held.ranks and rel not in held.gone:
                    held.gone.add(rel)
                    _count(held, rel, -1)
                    held.version += 1
        held.log_at = len(state.created)
    return held


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    if step.transaction is None or not ctx.held_before(step):
        return
    if not step.effects.transactional:
        return  # in a transaction it fails at once (PW130's), holding nobody up
    slow = _slow(step, ctx)
    if slow is None:
        return
    doing, est, maybe = slow
    held = _held(ctx, step.transaction)
    if held is None:
        return
    locks = ctx.held_before(step)
    long = int(est is not None and est >= LONG_LOCK_S)
    mine = frozenset(  # held locks this statement takes itself, as strong or stronger
        rel
        for rel, mode in step.effects.strongest().items()
        if rel in held.ranks and rel not in held.gone and mode >= locks[rel][0]
    )
    if held.said_at != held.version:
        held.said.clear()
        held.said_at = held.version
    key = (long, mine, step.location.path, est)
    if key in held.said:
        said = held.said[key]
    else:
        said = held.said[key] = _say(ctx, held, locks, long, mine, step.location.path, est)
    if said is None:
        return
    yield Hit(
        message=f"{said.locks}, {'is' if said.count == 1 else 'are'} still held while "
        f"this statement {doing} ({how_long(est)}): locks live until COMMIT and this runs "
        f"{tx_words(step, ctx)}, so that traffic waits for this statement too; {said.sizes}",
        help="commit right after the statement that takes the strong lock and run this one in its "
        + (
            "own transaction: its own migration (the tool runs this whole file in one "
            "transaction, so a BEGIN ... COMMIT block inside it would start none)"
            if _runner_holds_transaction(step, ctx)
            else "own transaction (its own migration, or its own BEGIN ... COMMIT block in the "
            "file)"
        ),
        # a rewrite PW104 only says may happen: no surer here
        severity=Severity.WARNING if maybe and said.worst is Severity.ERROR else said.worst,
    )


def _runner_holds_transaction(step: Step, ctx: LintContext) -> bool:
    """Whether the step's file is one whose tool holds a transaction around it (a BEGIN in
    it starts none: SourceText.runner_transaction), when the plan assumes file transactions."""
    key = f"{CODE}.runner_transaction"
    paths = ctx.state.get(key)
    if paths is None:
        # (a BEGIN in a file sent as one query does start a block)
        held = {
            t.path
            for t in ctx.plan.texts
            if t.runner_transaction and not t.one_query and not t.query_parts
        }
        paths = ctx.state[key] = frozenset(  # (none when lint assumes no file transactions)
            s.location.path
            for s in ctx.plan.steps
            if s.tx_mode is TxMode.FILE and s.location.path in held
        )
    return step.location.path in cast("frozenset[str]", paths)


def _say(
    ctx: LintContext,
    held: _Held,
    locks: dict[str, Entry],
    long: int,
    mine: frozenset[str],
    path: str,
    est: float | None,
) -> _Said | None:
    """The held locks a statement in `path` waits behind, less `mine`, in words (None:
    none that blocks)."""
    counts = dict(held.counts[long])
    for rel in mine:
        counts[held.ranks[rel][long]] -= 1
    ranks = [rank for rank, n in counts.items() if n > 0]
    if not ranks:
        return None
    count = sum(counts.values())
    parts: list[str] = []
    sizes: list[str] = []
    for _, rel in held.blocking:
        if len(parts) == NAMED:
            break
        if rel in held.gone or rel in mine:
            continue
        mode, earlier = locks[rel]
        where = earlier.location
        at = f"line {where.line}" if where.path == path else str(where)
        parts.append(f"{describe_lock(mode, rel)}, taken at {at}")
        sizes.append(f"{rel}: {ctx.judge(rel, lock_s=est).size}")
    if count > NAMED:
        parts.append(f"{count - NAMED:,} more such locks")
        sizes.append(f"(and {count - NAMED:,} more tables)")
    return _Said(_SEVERITY[max(ranks)], count, " and ".join(parts), "; ".join(sizes))


RULE = Rule(
    code=CODE,
    name="strong-lock-held-across-statements",
    summary="a lock taken earlier in the transaction blocks traffic during a later slow statement",
    doc=__doc__ or "",
    check=check,
    observe=observe,
)
