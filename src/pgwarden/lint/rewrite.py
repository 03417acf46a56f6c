"""Replace hazardous steps by the lint fixes' safe equivalents: `apply --rewrite`, `lint --fix`.

Uses the rules' `Finding.fix` SQL (PW101 CONCURRENTLY, PW102 NOT VALID +
VALIDATE, PW103 SET NOT NULL via a validated CHECK, PW105 UNIQUE via a
concurrent index + USING INDEX, PW106 CHECK NOT VALID + VALIDATE) and places
each statement of a fix:
- the first transactional statement stays where the step was (same transaction);
- statements that cannot run in a transaction (CONCURRENTLY) move before the
  step's transaction, or after it when they follow the in-place statement;
- statements after a `-- in a separate transaction` line run after the step's
  transaction ends, each in its own transaction.
A statement that cannot run in a transaction but sits in one is moved out too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import ParsedStatement, parse
from pgwarden.lint.engine import lint_plan
from pgwarden.plan import Plan, Step, TxMode

__all__ = ["REWRITABLE", "Rewrite", "rewrite_plan"]

REWRITABLE = ("PW101", "PW102", "PW103", "PW105", "PW106")
_SEPARATOR = re.compile(r"^\s*--.*$", re.M)


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
    tree: dict[str, object]
    origin: Step
    transaction: int | None


def _chunks(fix: str, path: str) -> list[list[ParsedStatement]]:
    return [stmts for part in _SEPARATOR.split(fix) if (stmts := parse(part, path))]


def rewrite_plan(
    plan: Plan, *, snapshot: Snapshot | None = None, catalog: Catalog | None = None
) -> tuple[Plan, tuple[Rewrite, ...]]:
    """The plan with rewritable hazards replaced, and what was replaced."""
    cat = catalog if catalog is not None else (snapshot.catalog if snapshot else None)
    fixes: dict[int, tuple[str, str]] = {}
    for f in lint_plan(plan, snapshot=snapshot).findings:
        if f.fix and f.step is not None and f.code in REWRITABLE and f.step not in fixes:
            fixes[f.step] = (f.code, f.fix)

    before: dict[int, list[_New]] = {}
    after: dict[int, list[_New]] = {}
    inplace: dict[int, list[_New]] = {}
    rewrites: list[Rewrite] = []
    for step in plan.steps:
        tx = step.transaction
        if step.index in fixes:
            code, fix = fixes[step.index]
            chunks = _chunks(fix, step.location.path)
            rewrites.append(
                Rewrite(step.index, code, step.sql, tuple(s.text for c in chunks for s in c))
            )
        elif tx is not None and not step.effects.transactional and not step.is_transaction_control:
            chunks = [[ParsedStatement(step.sql, 0, len(step.sql), step.tree)]]
            rewrites.append(Rewrite(step.index, "tx", step.sql, (step.sql,)))
        else:
            continue
        placed_chunk: int | None = None
        mine: list[_New] = []
        for n, chunk in enumerate(chunks):
            for stmt in chunk:
                transactional = analyse(stmt.tree).transactional
                if not transactional:
                    target = after if placed_chunk is not None else before
                    target.setdefault(step.index, []).append(_New(stmt.text, stmt.tree, step, None))
                elif placed_chunk is None or placed_chunk == n:
                    placed_chunk = n
                    mine.append(_New(stmt.text, stmt.tree, step, tx))
                else:
                    after.setdefault(step.index, []).append(_New(stmt.text, stmt.tree, step, None))
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
