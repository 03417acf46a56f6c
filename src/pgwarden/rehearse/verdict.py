"""Findings from a rehearsal: blocked traffic, failed steps, model bugs, query regressions.

Codes (stable, RH = measured by rehearsal, unlike lint's static PW codes):
  RH101 traffic_blocked_during_step      probes waited on this step's locks
  RH102 step_failed                      the server rejected the step
  RH103 rows_inserted_between_backfill_and_not_null
                                         a NOT NULL failed on rows the application's
                                         traffic inserted after the fill (null_window.py)
  RH201 query_slower_after_migration     workload latency ratio above the threshold
  RH202 query_plan_changed               index no longer used / seq scan appears
  RH203 query_fails_after_migration      a workload query errors only afterwards
  RH301 lock_model_mismatch              the server took other locks than modelled
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pgwarden.findings import Finding, Severity
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan, Step
from pgwarden.rehearse.model import StepTrace, WorkloadComparison
from pgwarden.rehearse.null_window import null_window_finding
from pgwarden.rehearse.opaque import OPAQUE_KIND

__all__ = ["BLOCKED_S", "findings_for"]

BLOCKED_S = 0.25  # wait that makes blocked traffic a finding (any wait during a scan/rewrite)
ERROR_S = 1.0  # estimated wait at production size that makes it an error


def _loc(text: str) -> SourceLocation:
    path, _, rest = text.rpartition(":")
    path2, _, line = path.rpartition(":")
    try:
        return SourceLocation(path2, int(line), int(rest))
    except ValueError:
        return SourceLocation(text, 1, 1)


def _adds_validated_fk(step: Step) -> str | None:
    body = step.tree.get("AlterTableStmt")
    if body is None:
        return None
    for cmd in body.get("cmds", []):
        c = cmd.get("AlterTableCmd", {})
        con = c.get("def", {}).get("Constraint", {})
        if con.get("contype") == "CONSTR_FOREIGN" and not con.get("skip_validation"):
            return str(con.get("conname") or "the foreign key")
    return None


def _help(step: Step) -> str:
    fk = _adds_validated_fk(step)
    if fk is not None:
        return (
            f"use NOT VALID + VALIDATE: add {fk} with NOT VALID (a brief lock, no scan), then "
            f"run ALTER TABLE ... VALIDATE CONSTRAINT {fk} in its own transaction; validation "
            "then takes SHARE UPDATE EXCLUSIVE, which lets reads and writes go on"
        )
    index = step.tree.get("IndexStmt")
    if index is not None and not index.get("concurrent"):
        return "build the index with CREATE INDEX CONCURRENTLY (outside a transaction block)"
    if step.effects.rewrites:
        return (
            "avoid the rewrite: add a new column, backfill it in batches, then swap; "
            "or schedule the change in a maintenance window"
        )
    return (
        "keep the strong lock short: set a short lock_timeout, move slow work (scans, "
        "backfills) out of the transaction that holds it, and retry"
    )


# a step that failed at once holds no lock of its own; its transaction's earlier steps' do
_EARLIER = "none sampled of its own, those of the steps before it in its transaction"


def _blocking_finding(step: Step, tr: StepTrace) -> Finding | None:
    heavy = bool(tr.rewrites or step.effects.scans or step.effects.rewrites)
    worst: tuple[str, str, float, float | None] | None = None
    for b in tr.blocking:
        for kind, measured, est in (
            ("writes", b.writes_blocked_s, b.est_writes_blocked_s),
            ("reads", b.reads_blocked_s, b.est_reads_blocked_s),
        ):
            if measured <= 0:
                continue
            big = heavy or max(measured, est or 0.0) >= BLOCKED_S
            if big and (
                worst is None or max(measured, est or 0.0) > max(worst[2], worst[3] or 0.0)
            ):
                worst = (b.table, kind, measured, est)
    if worst is None:
        return None
    table, kind, measured, est = worst
    held = ", ".join(
        f"{m} on {r}" for r, m in sorted(tr.strongest().items()) if m != "ACCESS SHARE"
    )
    whole = "the whole of" if measured >= 0.8 * tr.statement_s else "part of"
    msg = (
        f"{kind} to {table} were blocked for {measured:.3f} s in the rehearsal, {whole} "
        f"this {tr.statement_s:.3f} s statement and until its locks were released"
    )
    if est is not None and tr.scale not in (None, 1.0):
        msg += f"; estimated {est:.1f} s at production size (linear in table size)"
    elif est is None and heavy:
        msg += "; no stats snapshot, so no production estimate: the block grows with the table"
    value = est if est is not None else measured
    severity = Severity.ERROR if value >= ERROR_S or (est is None and heavy) else Severity.WARNING
    return Finding(
        "RH101",
        "traffic_blocked_during_step",
        severity,
        f"{msg} (locks held: {held or _EARLIER})",
        _help(step),
        step.location,
        step=step.index,
    )


def findings_for(
    plan: Plan,
    traces: Sequence[StepTrace],
    workload: Sequence[WorkloadComparison],
    *,
    threshold: float = 1.5,
    min_delta_ms: float = 0.2,
) -> list[Finding]:
    """Every finding of the rehearsal, in plan order, then workload order.

    A slower query is a regression when its ratio reaches `threshold` and either
    its plan changed or it got at least `min_delta_ms` slower (below that, an
    unchanged plan's ratio is noise).
    """
    by_index = {s.index: s for s in plan.steps}
    out: list[Finding] = []
    for tr in traces:
        step = by_index[tr.index]
        if tr.kind == OPAQUE_KIND:  # the caller's step: found where the caller says it is
            step = replace(step, location=_loc(tr.location))
        window = null_window_finding(plan, traces, tr, step.location) if tr.error else None
        if window is not None:
            out.append(window)
        elif tr.error is not None:
            out.append(
                Finding(
                    "RH102",
                    "step_failed",
                    Severity.ERROR,
                    f"step {tr.index} failed: {tr.error.message}"
                    + (f" (SQLSTATE {tr.error.sqlstate})" if tr.error.sqlstate else "")
                    + f"; {tr.error.cluster_state}",
                    "fix the statement; the migration would fail the same way in production"
                    if tr.kind != OPAQUE_KIND
                    else "see whether it fails for want of rows the copy does not have (its "
                    "rows are synthetic) or would fail in production too; fix the code if so",
                    step.location,
                    step=step.index,
                )
            )
        blocked = _blocking_finding(step, tr)
        if blocked is not None:
            out.append(blocked)
        for d in tr.model_diffs:
            out.append(
                Finding(
                    "RH301",
                    "lock_model_mismatch",
                    Severity.WARNING,
                    f"pgwarden's lock model predicted {d.modelled or 'no lock'} on {d.relation}, "
                    f"the server took {d.observed or 'none'}: a bug in pgwarden's lock model",
                    "please report it with this statement and server version; lint's findings "
                    "for this step may be wrong",
                    step.location,
                    step=step.index,
                )
            )
    for w in workload:
        loc = _loc(w.location)
        ratio = w.ratio
        b, a = w.before, w.after
        if a.error and not b.error:
            out.append(
                Finding(
                    "RH203",
                    "query_fails_after_migration",
                    Severity.ERROR,
                    f"workload query {w.name} fails after the migration: {a.error}",
                    "change the query with the migration, or keep the old schema until it ships",
                    loc,
                )
            )
        elif (
            ratio is not None
            and b.median_ms is not None
            and a.median_ms is not None
            and ratio >= threshold
            and (w.changes or a.median_ms - b.median_ms >= min_delta_ms)
        ):
            why = "; ".join(w.changes) or "same plan, slower execution"
            out.append(
                Finding(
                    "RH201",
                    "query_slower_after_migration",
                    Severity.ERROR,
                    f"workload query {w.name} went from {b.median_ms:.3f} ms to "
                    f"{a.median_ms:.3f} ms ({ratio:.1f}x): {why}",
                    "keep the index the query uses, or move the trigger's work off the insert "
                    "path; rerun the rehearsal to compare",
                    loc,
                )
            )
        elif w.changes:
            out.append(
                Finding(
                    "RH202",
                    "query_plan_changed",
                    Severity.WARNING,
                    f"workload query {w.name}: " + "; ".join(w.changes),
                    "check the query at production size; the plan may be slower there",
                    loc,
                )
            )
    return out
