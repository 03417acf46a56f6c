"""Replace hazardous steps by the rules' fixes: `apply --rewrite`, `lint --fix`.

Every finding whose `Fix` is mechanical replaces its step (the first such
finding per step). Each statement of the fix goes where its `Placement` says:
`IN_PLACE` where the step was (same transaction), `BEFORE` alone before the
step's transaction begins, `AFTER` after it commits, each in its own
transaction; `SESSION` settings are left to the caller (`lint --fix` writes a
bounded prologue, `apply` sets its own timeouts). A statement that cannot run
in a transaction but sits in one is moved out too. A statement moved out that
uses what an earlier step of its transaction made (a table it created, a column
it added) cannot run before that transaction: the transaction is split there
instead (what came before commits, the statement runs, the rest follows in a
new transaction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.nodes import Node
from pgwarden.analysis.parse import parse
from pgwarden.findings import Fix, Placement
from pgwarden.lint.engine import lint_plan
from pgwarden.plan import Plan, Step, TxMode
from pgwarden.rules._sql import alter_cmds, table_of

__all__ = ["Rewrite", "rewrite_plan", "statement_changes"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One replaced step: which rule, the original SQL, the statements replacing it."""

    step: int
    code: str
    original: str
    replacement: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _New:
    sql: str
    tree: Node
    origin: Step
    transaction: int | None


_WORD = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


def _uses_earlier(sql: str, tree: Node, earlier: list[Step]) -> bool:
    """Whether `sql` uses a relation or column that one of `earlier` creates or adds."""
    relations = {lock.relation for lock in analyse(tree).locks}
    words = {m.group(1) or m.group(2).lower() for m in _WORD.finditer(sql)}
    for step in earlier:
        if relations & set(step.effects.creates):
            return True
        if table_of(step) not in relations:
            continue
        for sub, fields in alter_cmds(step):
            column = fields.get("def")
            if sub == "AT_AddColumn" and isinstance(column, dict):
                name = column.get("ColumnDef", {}).get("colname")
                if isinstance(name, str) and name in words:
                    return True
    return False


def statement_changes(fix: Fix, step: Step) -> bool:
    """Whether a mechanical fix changes the plan's statements (not only session settings)."""
    if not fix.mechanical:
        return False
    rest = [s for s in fix.statements if s.placement is not Placement.SESSION]
    unchanged = (
        len(rest) == 1
        and rest[0].placement is Placement.IN_PLACE
        and rest[0].sql.rstrip().rstrip(";").strip() == step.sql.rstrip().rstrip(";").strip()
    )
    return bool(rest) and not unchanged


def rewrite_plan(
    plan: Plan,
    *,
    snapshot: Snapshot | None = None,
    catalog: Catalog | None = None,
    skip: frozenset[int] = frozenset(),
) -> tuple[Plan, tuple[Rewrite, ...]]:
    """The plan with rewritable hazards replaced, and what was replaced.

    `skip`: steps whose fixes are left out (`lint --fix` drops a fix that would
    bring in a hazard of its own).
    """
    cat = catalog if catalog is not None else (snapshot.catalog if snapshot else None)
    fixes: dict[int, tuple[str, Fix]] = {}
    for f in lint_plan(plan, snapshot=snapshot).findings:
        if (
            f.fix is not None
            and f.step is not None
            and f.step not in fixes
            and f.step not in skip
            and statement_changes(f.fix, plan.steps[f.step])
        ):
            fixes[f.step] = (f.code, f.fix)

    before: dict[int, list[_New]] = {}
    after: dict[int, list[_New]] = {}
    inplace: dict[int, list[_New]] = {}
    split: dict[int, list[_New]] = {}  # run where the step was, between two transactions
    rewrites: list[Rewrite] = []
    so_far: dict[int, list[Step]] = {}  # each transaction's steps up to this one
    for step in plan.steps:
        tx = step.transaction
        earlier = so_far.setdefault(tx, []) if tx is not None else []
        if tx is not None:
            earlier.append(step)
        if step.index in fixes:
            code, fix = fixes[step.index]
            placed = [
                (stmt.text, stmt.tree, fs.placement)
                for fs in fix.statements
                if fs.placement is not Placement.SESSION
                for stmt in parse(fs.sql, step.location.path)
            ]
        elif tx is not None and not step.effects.transactional and not step.is_transaction_control:
            code, placed = "tx", [(step.sql, step.tree, Placement.BEFORE)]
        else:
            continue
        rewrites.append(Rewrite(step.index, code, step.sql, tuple(q for q, _, _ in placed)))
        mine: list[_New] = []
        for sql_text, tree, placement in placed:
            if placement is Placement.IN_PLACE and analyse(tree).transactional:
                mine.append(_New(sql_text, tree, step, tx))
            elif placement is Placement.AFTER:
                after.setdefault(step.index, []).append(_New(sql_text, tree, step, None))
            elif tx is not None and _uses_earlier(sql_text, tree, earlier[:-1]):
                split.setdefault(step.index, []).append(_New(sql_text, tree, step, None))
            else:  # BEFORE, or anything that cannot run in a transaction block
                before.setdefault(step.index, []).append(_New(sql_text, tree, step, None))
        inplace[step.index] = mine

    if not rewrites:
        return plan, ()

    # Moves relative to transactions: before the first step, after the last.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for step in plan.steps:
        if step.transaction is not None:
            first.setdefault(step.transaction, step.index)
            last[step.transaction] = step.index
    pre: dict[int, list[_New]] = {}
    post: dict[int, list[_New]] = {}
    for idx, items in before.items():
        tx = plan.steps[idx].transaction
        pre.setdefault(first[tx] if tx is not None else idx, []).extend(items)
    for idx, items in after.items():
        tx = plan.steps[idx].transaction
        post.setdefault(last[tx] if tx is not None else idx, []).extend(items)

    out: list[_New] = []
    next_tx = 1 + max((s.transaction for s in plan.steps if s.transaction is not None), default=-1)
    renamed: dict[int, int] = {}  # a split transaction's id -> the id of its second part
    for step in plan.steps:
        out.extend(pre.get(step.index, []))
        if step.index in split and step.transaction is not None:
            out.extend(split[step.index])
            renamed[step.transaction] = next_tx
            next_tx += 1
        here = inplace.get(step.index, [_New(step.sql, step.tree, step, step.transaction)])
        for new in here:
            tx = new.transaction
            out.append(replace(new, transaction=renamed.get(tx, tx)) if tx is not None else new)
        out.extend(post.get(step.index, []))

    steps: list[Step] = []
    for i, new in enumerate(out):
        same = new.sql == new.origin.sql and new.transaction == new.origin.transaction
        steps.append(
            Step(
                index=i,
                sql=new.sql,
                location=new.origin.location,
                tree=new.tree,
                tx_mode=new.origin.tx_mode if new.transaction is not None else TxMode.AUTOCOMMIT,
                transaction=new.transaction,
                effects=new.origin.effects
                if same
                else analyse(new.tree, catalog=cat, server_version=plan.server_version),
            )
        )
    return (
        Plan(tuple(steps), plan.sources, plan.server_version, plan.texts, plan.assumptions),
        tuple(rewrites),
    )
