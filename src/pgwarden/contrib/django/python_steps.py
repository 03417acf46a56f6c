"""Where a migration's RunPython (any operation that is not SQL) runs among a plan's steps.

A Django plan holds only SQL: code runs between the statements of the operations
before and after it. PW401's preflight needs that position to know which new
constraints the code may fix rows for.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgwarden.contrib.django.source import MigrationSQL
from pgwarden.lint.preflight_writes import Write
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan

__all__ = ["python_writes"]


def python_writes(plan: Plan, migrations: Sequence[MigrationSQL]) -> list[tuple[int, Write]]:
    """(index of the first step that runs after it, write) for every operation that is
    not SQL, as code that may change any table.

    Steps are matched to operations by location; the SQL Django defers to the end of
    a migration (foreign keys, indexes) is found where the operation order goes back,
    and counts as after the code.
    """
    out: list[tuple[int, Write]] = []
    steps = plan.steps
    pos = 0
    for mig in migrations:
        at = {(o.line, o.column): o.index for o in mig.operations}
        start = pos
        while pos < len(steps) and steps[pos].location.path == mig.path:
            pos += 1
        order = [at.get((s.location.line, s.location.column), -1) for s in steps[start:pos]]
        tail = next((k for k in range(1, len(order)) if order[k] < order[k - 1]), len(order))
        for op in mig.python_operations:
            after = next((k for k, o in enumerate(order) if k >= tail or o > op.index), len(order))
            where = SourceLocation(mig.path, op.line, op.column)
            out.append((start + after, Write(where, f"{op.describe} ({mig.key})", None)))
    return out
