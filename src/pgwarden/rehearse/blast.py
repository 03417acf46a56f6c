"""Blast radius: how long probe traffic was blocked per step, and at production size.

A probe operation is blocked when the sampler saw its backend waiting for a
lock while it ran; the part of it that overlaps a step counts for that step.
The figure per table and step is the longest such wait (what one request
felt). The production estimate scales steps that scan or rewrite a table
linearly by that table's size in the snapshot over its size here (heap bytes
for scans, total bytes for rewrites); other steps do not grow with the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pgwarden.plan import Plan
from pgwarden.rehearse.model import Blocking, LoadedTable, StepTrace
from pgwarden.rehearse.probes import Probe
from pgwarden.rehearse.trace import interval_overlap

__all__ = ["attach_blocking", "blocked_ops", "scale_of"]


def blocked_ops(p: Probe, spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """[start, end] of `p`'s operations during which its backend was seen waiting."""
    out = []
    for op in p.ops:
        if any(
            interval_overlap((op.start_s, op.end_s), s) > 0 or op.start_s <= s[0] <= op.end_s
            for s in spans
        ):
            out.append((op.start_s, op.end_s))
    return out


def scale_of(
    trace: StepTrace, scans: Sequence[str], tables: Mapping[str, LoadedTable]
) -> float | None:
    """Production size / rehearsal size of the work this step did (None: unknown)."""
    if not tables or all(t.prod_rows is None for t in tables.values()):
        return None
    factors = []
    for name in set(scans) | set(trace.rewrites):
        t = tables.get(name)
        if t is None or t.prod_rows is None:
            continue
        if name in trace.rewrites and t.prod_total_bytes and t.total_bytes:
            factors.append(t.prod_total_bytes / t.total_bytes)
        elif t.prod_table_bytes and t.table_bytes:
            factors.append(t.prod_table_bytes / t.table_bytes)
        elif t.rows:
            factors.append(t.prod_rows / t.rows)
    return max(factors, default=1.0)


def attach_blocking(
    plan: Plan,
    traces: Sequence[StepTrace],
    probes: Sequence[Probe],
    waits: Mapping[int, Sequence[tuple[float, float]]],
    tables: Mapping[str, LoadedTable],
) -> list[StepTrace]:
    """Traces with `blocking`, `scale` and the production estimates filled in."""
    blocked = {id(p): blocked_ops(p, waits.get(p.pid, ())) for p in probes}
    by_index = {s.index: s for s in plan.steps}
    out = []
    for tr in traces:
        if tr.status in ("skipped",) or tr.end_s <= tr.start_s:
            out.append(tr)
            continue
        step = by_index.get(tr.index)
        scans = list(step.effects.scans) if step is not None else []
        scale = scale_of(tr, scans, tables)
        span = (tr.start_s, tr.end_s)
        rows: list[Blocking] = []
        for table in sorted({p.table for p in probes}):
            worst = {"read": 0.0, "write": 0.0}
            count = {"read": 0, "write": 0}
            for p in probes:
                if p.table != table:
                    continue
                count[p.kind] += sum(
                    1
                    for op in p.ops
                    if interval_overlap((op.start_s, op.end_s), span) > 0
                    or tr.start_s <= op.start_s <= tr.end_s
                )
                for b in blocked[id(p)]:
                    worst[p.kind] = max(worst[p.kind], interval_overlap(b, span))
            rows.append(
                Blocking(
                    table,
                    worst["read"],
                    worst["write"],
                    count["read"],
                    count["write"],
                    worst["read"] * scale if scale is not None else None,
                    worst["write"] * scale if scale is not None else None,
                )
            )
        out.append(
            replace(
                tr,
                blocking=tuple(rows),
                scale=scale,
                est_duration_s=tr.statement_s * scale if scale is not None else None,
            )
        )
    return out
