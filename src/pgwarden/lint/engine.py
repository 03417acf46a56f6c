"""Run the rules over a plan in order, keeping the deploy-level context."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate

from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.parse import gc_paused
from pgwarden.errors import SqlParseError
from pgwarden.findings import Finding, Fix, Placement, Severity, new_finding
from pgwarden.location import LineIndex, SourceLocation
from pgwarden.plan import Plan, Step
from pgwarden.rules import ALL_RULES, Rule
from pgwarden.rules._sql import alter_cmds
from pgwarden.rules.base import DmlLimits, LintContext
from pgwarden.settings import UnknownTypeChange

__all__ = [
    "IGNORE_WITHOUT_REASON",
    "SYNTAX_ERROR",
    "LintResult",
    "Suppression",
    "ignore_without_reason",
    "lint_plan",
    "merged_fixes",
    "syntax_error_result",
]

IGNORE_WITHOUT_REASON = "PW900"
SYNTAX_ERROR = "PW901"
_CODE = r"(?:PW\d+|[a-z][a-z0-9-]+)"
_IGNORE = re.compile(rf"--\s*pgwarden:\s*ignore\s+({_CODE}(?:\s*,\s*{_CODE})*)[ \t]*(.*)$", re.M)


@dataclass(frozen=True, slots=True)
class Suppression:
    """An `-- pgwarden: ignore CODE reason` comment and the step it applies to."""

    codes: tuple[str, ...]
    reason: str
    location: SourceLocation
    step: int | None


@dataclass(frozen=True, slots=True)
class LintResult:
    """Findings in plan order, and what was suppressed with which reason."""

    findings: tuple[Finding, ...]
    suppressed: tuple[tuple[Finding, Suppression], ...] = ()
    assumptions: tuple[str, ...] = field(default=())

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def failed(self, threshold: Severity) -> bool:
        return any(f.severity.at_least(threshold) for f in self.findings)


def _changes(fix: Fix) -> bool:
    return any(s.placement is not Placement.SESSION for s in fix.statements)


def merged_fixes(findings: Iterable[Finding]) -> dict[int, tuple[tuple[str, ...], Fix]]:
    """One fix per step: the codes it covers, and the merged fix.

    Session settings of every finding on the step come first (each once); then
    the statements of one fix that changes the statement (the most severe, then
    the lowest code). A mechanical fix never loses to advice. Codes whose
    statement change lost to another's are not covered.
    """
    by_step: dict[int, list[Finding]] = {}
    for f in findings:
        if f.fix is not None and f.step is not None:
            by_step.setdefault(f.step, []).append(f)
    out: dict[int, tuple[tuple[str, ...], Fix]] = {}
    for step, group in by_step.items():
        changing = sorted(
            (f for f in group if f.fix is not None and _changes(f.fix)),
            key=lambda f: (not (f.fix is not None and f.fix.mechanical), -f.severity.rank, f.code),
        )
        main = changing[0] if changing else None
        codes: list[str] = []
        session: list[str] = []
        head = []
        for f in group:
            assert f.fix is not None
            if f is main or not _changes(f.fix):
                codes.append(f.code)
            for st in f.fix.statements:
                if st.placement is Placement.SESSION and st.sql not in session:
                    session.append(st.sql)
                    head.append(st)
        rest = tuple(
            st
            for st in (main.fix.statements if main and main.fix else ())
            if st.placement is not Placement.SESSION
        )
        mechanical = main is None or (main.fix is not None and main.fix.mechanical)
        why_not = main.fix.why_not if main is not None and main.fix is not None else None
        out[step] = (
            tuple(dict.fromkeys(codes)),
            Fix((*head, *rest), mechanical=mechanical, why_not=why_not),
        )
    return out


def _suppressions(plan: Plan) -> list[Suppression]:
    out: list[Suppression] = []
    commented = [source for source in plan.texts if "pgwarden:" in source.text]
    if not commented:
        return out  # no ignore comment anywhere: no need to group the steps by file
    by_path: dict[str, list[Step]] = {}
    for step in plan.steps:
        by_path.setdefault(step.location.path, []).append(step)
    for source in commented:
        steps = by_path.get(source.path, [])
        # Steps of one source follow each other, so first and last lines both ascend.
        firsts = [s.location.line for s in steps]
        lasts = list(accumulate((s.location.line + s.sql.count("\n") for s in steps), max))
        lines = LineIndex(source.text)
        for m in _IGNORE.finditer(source.text):
            line, col = lines.line_col(m.start())
            # The statement the comment stands before or in; a trailing comment on the last
            # line of a statement belongs to that statement (the last one on that line).
            k = bisect_left(lasts, line)
            target = steps[k].index if k < len(steps) else None
            last = bisect_right(firsts, line) - 1
            if last >= 0 and firsts[last] <= line <= _last_line(steps[last]):
                target = steps[last].index
            codes = tuple(c.strip() for c in m.group(1).split(","))
            out.append(
                Suppression(
                    codes, m.group(2).strip(), SourceLocation(source.path, line, col), target
                )
            )
    return out


def _last_line(step: Step) -> int:
    return step.location.line + step.sql.count("\n")


def ignore_without_reason(
    codes: tuple[str, ...],
    location: SourceLocation,
    step: int | None = None,
    *,
    comment: str = "--",
) -> Finding:
    """PW900: an ignore comment without a reason suppresses nothing and is itself an error."""
    return Finding(
        code=IGNORE_WITHOUT_REASON,
        name="ignore-without-reason",
        severity=Severity.ERROR,
        message=f"`pgwarden: ignore {', '.join(codes)}` gives no reason, so it suppresses nothing",
        help=f"say why the hazard is acceptable, e.g. {comment} pgwarden: ignore PW101 "
        "settings has 40 rows",
        location=location,
        step=step,
    )


def syntax_error_result(exc: SqlParseError) -> LintResult:
    """PW901: a file the server grammar rejects, as the one finding of a lint that stopped
    there (nothing is linted), for the machine formats that must still write a report."""
    return LintResult((syntax_error_finding(exc, "nothing was linted"),))


def not_rendered_finding(path: str, why: str) -> Finding:
    """PW133 at an Alembic revision that cannot render offline: lint did not see its SQL."""
    return Finding(
        code="PW133",
        name="dynamic-sql-not-analysed",
        severity=Severity.WARNING,
        message=f"{why.removeprefix(f'{path}: ')} (this revision was not linted)",
        help="review this revision by hand, or `pgwarden rehearse --alembic` it; "
        "`pgwarden apply --alembic` runs it online, in a guarded transaction of its own",
        location=SourceLocation(path, 1, 1),
    )


def syntax_error_finding(exc: SqlParseError, what: str) -> Finding:
    """PW901: the error of a file the server grammar rejects; `what` says what was linted."""
    return Finding(
        code=SYNTAX_ERROR,
        name="syntax-error",
        severity=Severity.ERROR,
        message=f"{exc.server_message} ({what})",
        help=exc.hint or "fix the SQL at that position",
        location=exc.location,
    )


def lint_plan(
    plan: Plan,
    *,
    snapshot: Snapshot | None = None,
    rules: Iterable[Rule] = ALL_RULES,
    ignore: Iterable[str] = (),
    dml: DmlLimits | None = None,
    unknown_type_change: UnknownTypeChange = "warning",
) -> LintResult:
    """Findings of `rules` over `plan`, minus config ignores and justified inline ignores."""
    with gc_paused():
        return _lint_plan(plan, snapshot, rules, ignore, dml, unknown_type_change)


def _rules_for(active: list[Rule], kind: str, subtypes: frozenset[str] | None) -> list[Rule]:
    """The rules of `active` that look at a statement of `kind` (with these ALTER TABLE
    sub-commands), in code order."""

    def looks(r: Rule) -> bool:
        if r.kinds is None:
            return True
        if kind not in r.kinds:
            return False
        return r.subtypes is None or subtypes is None or not r.subtypes.isdisjoint(subtypes)

    return sorted(filter(looks, active), key=lambda r: r.code)


def _lint_plan(
    plan: Plan,
    snapshot: Snapshot | None,
    rules: Iterable[Rule],
    ignore: Iterable[str],
    dml: DmlLimits | None = None,
    unknown_type_change: UnknownTypeChange = "warning",
) -> LintResult:
    ignored = set(ignore)
    active = [r for r in rules if r.code not in ignored and r.name not in ignored]
    ctx = LintContext(
        plan=plan,
        snapshot=snapshot,
        dml=dml or DmlLimits(),
        unknown_type_change=unknown_type_change,
    )
    raw: list[Finding] = []
    observing = [r for r in active if r.observe is not None]
    observers_by_kind: dict[str, list[Callable[[Step, LintContext], None]]] = {}
    # The rules that look at a statement, by its kind (and an ALTER TABLE's sub-commands):
    # most rules are about one kind of statement, so most never run on a given one.
    by_kind: dict[object, list[Rule]] = {}
    for step in plan.lint_steps():  # a DO block's statements are sub-steps
        ctx.enter(step)
        kind = step.kind
        subtypes = None
        key: object = kind
        if kind == "AlterTableStmt":
            key = subtypes = frozenset([sub for sub, _ in alter_cmds(step)])
        rules_here = by_kind.get(key)
        if rules_here is None:
            rules_here = by_kind[key] = _rules_for(active, kind, subtypes)
        for rule in rules_here:
            # `Rule.run`, inlined: most checks find nothing, so build no list for them.
            for hit in rule.check(step, ctx):
                raw.append(
                    new_finding(
                        rule.code,
                        rule.name,
                        hit.severity,
                        hit.message + step.note,
                        hit.help,
                        hit.location or step.location,
                        None if step.note else hit.fix,  # no SQL to swap inside a body
                        step.index,
                    )
                )
        observers = observers_by_kind.get(kind)
        if observers is None:
            observers = observers_by_kind[kind] = [
                r.observe
                for r in observing
                if r.observe is not None and (r.observe_kinds is None or kind in r.observe_kinds)
            ]
        for observe in observers:
            observe(step, ctx)
        ctx.after(step)
    sups = _suppressions(plan)
    by_step: dict[int | None, list[Suppression]] = {}
    for s in sups:
        if s.reason:
            by_step.setdefault(s.step, []).append(s)
    kept: list[Finding] = raw if not by_step else []  # most plans suppress nothing
    suppressed: list[tuple[Finding, Suppression]] = []
    for f in raw if by_step else ():
        sup = next(
            (s for s in by_step.get(f.step, ()) if f.code in s.codes or f.name in s.codes),
            None,
        )
        if sup is None:
            kept.append(f)
        else:
            suppressed.append((f, sup))
    for s in sups:
        if not s.reason:
            kept.append(ignore_without_reason(s.codes, s.location, s.step))
    kept.sort(key=lambda f: (f.step if f.step is not None else -1, f.code))
    assumptions = (
        ()
        if snapshot is not None
        else ("no stats given: every existing table is assumed large and busy",)
    )
    return LintResult(tuple(kept), tuple(suppressed), assumptions)
