"""A plan built again, by `build_plan` itself, against the rehearsal cluster's catalog.

Each step keeps its parse tree and its position in its source text, so the
parsed sources are recovered from the plan without reading or parsing
anything again; `build_plan` (and, for Alembic, `thread_transactions`) then
derives the effects with the real column types, indexes and constraints.
"""

from __future__ import annotations

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.parse import ParsedStatement
from pgwarden.plan import Plan, SourceText, TxMode, build_plan

__all__ = ["reanalyse", "sources_of"]


def _offset(text: str, line: int, column: int) -> int:
    """The character offset of 1-based (`line`, `column`) in `text`."""
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return start + column - 1


def sources_of(plan: Plan) -> list[tuple[SourceText, list[ParsedStatement]]]:
    """The (source, statements) pairs `plan` was built from."""
    by_path: dict[str, list[ParsedStatement]] = {t.path: [] for t in plan.texts}
    text_of = {t.path: t.text for t in plan.texts}
    for step in plan.steps:
        loc = step.location
        start = _offset(text_of[loc.path], loc.line, loc.column)
        by_path[loc.path].append(ParsedStatement(step.sql, start, start + len(step.sql), step.tree))
    return [(t, by_path[t.path]) for t in plan.texts]


def reanalyse(
    plan: Plan, catalog: Catalog, server_version: int | None, *, alembic: bool = False
) -> Plan:
    """`plan` built again with `catalog`: same steps, transactions and locations."""
    sources = sources_of(plan)
    # Files wrapped in the runner's transaction: build_plan wraps every file without
    # its own BEGIN when asked to, so one wrapped step means the plan was built so.
    wrapped = any(s.tx_mode is TxMode.FILE for s in plan.steps)
    if alembic:
        from pgwarden.sources.alembic import build_alembic_plan

        return build_alembic_plan(sources, catalog=catalog, server_version=server_version)
    return build_plan(
        sources, catalog=catalog, server_version=server_version, file_transaction=wrapped
    )
