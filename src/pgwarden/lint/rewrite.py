"""Replace hazardous steps by the rules' fixes: `apply --rewrite`, `lint --fix`.

Every finding whose `Fix` is mechanical replaces its step (the first such
finding per step). Each statement of the fix goes where its `Placement` says:
`IN_PLACE` where the step was (same transaction), `BEFORE` alone before the
step's transaction begins, `AFTER` after it commits, each in its own
transaction; `SESSION` settings are left to the caller (`lint --fix` writes a
bounded prologue, `apply` sets its own timeouts). A statement that cannot run
in a transaction but sits in one is moved out too.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.nodes import Node
from pgwarden.analysis.parse import parse
from pgwarden.findings import Fix, Placement
from pgwarden.lint.engine import lint_plan
from pgwarden.plan import Plan, Step, TxMode

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
    rewrites: list[Rewrite] = []
    for step in plan.steps:
        tx = step.transaction
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
    for step in plan.steps:
        out.extend(pre.get(step.index, []))
        if step.index in inplace:
            out.extend(inplace[step.index])
        else:
            out.append(_New(step.sql, step.tree, step, step.transaction))
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
