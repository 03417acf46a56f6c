"""`lint --fix`: write each file's rewritten plan back as SQL, with explicit transactions.

The rewrite itself is `lint.rewrite.rewrite_plan`, the same one `apply --rewrite`
runs; this module only renders it. Every transaction becomes an explicit
BEGIN ... COMMIT, statements that cannot run in one stand alone, and when a
rule's fix sets a session lock_timeout (`Placement.SESSION`) the file starts
with one sized to what the busiest table it touches can bear (at most 1 s):

    SET lock_timeout = '60ms';
    BEGIN; ...statements that ran in one transaction...; COMMIT;
    CREATE INDEX CONCURRENTLY ...;
    ALTER TABLE ... VALIDATE CONSTRAINT ...;   -- its own transaction, after the commit
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from pgwarden.analysis.context import Snapshot
from pgwarden.findings import Finding, Placement
from pgwarden.lint.engine import LintResult
from pgwarden.lint.rewrite import rewrite_plan
from pgwarden.plan import Plan, Step
from pgwarden.rules.pw122_lock_timeout_too_long import bearable_ms, blocked_rate

__all__ = ["FileFix", "fix_plan", "write_fixes"]

DEFAULT_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class FileFix:
    """One file's rewrite: the findings it fixes, old and new text."""

    path: str
    old: str
    new: str
    fixed: tuple[Finding, ...]

    def diff(self) -> str:
        """A unified diff of the rewrite."""
        return "".join(
            difflib.unified_diff(
                self.old.splitlines(keepends=True),
                self.new.splitlines(keepends=True),
                fromfile=f"a/{self.path.lstrip('/')}",
                tofile=f"b/{self.path.lstrip('/')}",
            )
        )


def _timeout_ms(steps: list[Step], snapshot: Snapshot | None) -> int:
    """The prologue's lock_timeout: what the busiest table touched can bear, at most 1 s."""
    best = DEFAULT_TIMEOUT_MS
    for step in steps if snapshot is not None else ():
        for relation, mode in step.effects.strongest().items():
            table = snapshot.table(relation) if snapshot is not None else None
            rate = blocked_rate(table, mode) if table is not None and mode.blocks_writes else None
            if rate:
                best = min(best, bearable_ms(rate))
    return best


def _render(text: str, original: list[Step], steps: list[Step], timeout_ms: int | None) -> str:
    first_line = min((s.location.line for s in original), default=1)
    out = [ln for ln in text.splitlines()[: first_line - 1] if ln.strip()]
    out.append("-- Rewritten by `pgwarden lint --fix` for safe deployment.")
    if timeout_ms is not None:
        out += [
            "-- Every lock wait is bounded; retry the file if a statement times out.",
            f"SET lock_timeout = '{timeout_ms}ms';",
        ]
    open_tx: int | None = None
    for step in steps:
        if step.is_transaction_control:
            continue  # transactions are rendered from the plan's transaction ids
        if timeout_ms is not None and _sets_lock_timeout(step):
            continue  # replaced by the prologue's bounded timeout
        if step.transaction != open_tx:
            if open_tx is not None:
                out.append("COMMIT;")
            if step.transaction is not None:
                out.append("BEGIN;")
            open_tx = step.transaction
        out.append(f"{step.sql.strip()};")
    if open_tx is not None:
        out.append("COMMIT;")
    return "\n".join(out) + "\n"


def _sets_lock_timeout(step: Step) -> bool:
    return step.kind == "VariableSetStmt" and step.body.get("name") == "lock_timeout"


def fix_plan(plan: Plan, result: LintResult, snapshot: Snapshot | None = None) -> list[FileFix]:
    """The rewrite of every file that has at least one mechanical fix."""
    rewritten, rewrites = rewrite_plan(plan, snapshot=snapshot)
    replaced = {(r.step, r.code) for r in rewrites}  # the fix each replaced step took
    originals = _by_path(plan.steps)
    news = _by_path(rewritten.steps)
    path_of = {s.index: s.location.path for s in plan.steps}
    findings: dict[str, list[Finding]] = {}  # by path, in result order
    for f in result.findings:
        if f.step in path_of:
            findings.setdefault(path_of[f.step], []).append(f)
    fixes: list[FileFix] = []
    for source in plan.texts:
        original = originals.get(source.path, [])
        mine = findings.get(source.path, [])
        timeout = any(f.fix is not None and f.fix.sets_session for f in mine)
        fixed = tuple(
            f
            for f in mine
            if f.fix is not None
            and f.fix.mechanical
            and (_session_only(f) or (f.step, f.code) in replaced)
        )
        if not fixed:
            continue
        steps = news.get(source.path, [])
        new = _render(
            source.text, original, steps, _timeout_ms(original, snapshot) if timeout else None
        )
        if new != source.text:
            fixes.append(FileFix(source.path, source.text, new, fixed))
    return fixes


def _session_only(f: Finding) -> bool:
    """A fix that is only a session setting (the prologue writes it)."""
    return f.fix is not None and all(s.placement is Placement.SESSION for s in f.fix.statements)


def _by_path(steps: tuple[Step, ...]) -> dict[str, list[Step]]:
    """Steps grouped by source path, in plan order."""
    out: dict[str, list[Step]] = {}
    for step in steps:
        out.setdefault(step.location.path, []).append(step)
    return out


def write_fixes(fixes: list[FileFix]) -> None:
    """Write each rewrite in place (temp name, then rename)."""
    for fx in fixes:
        target = Path(fx.path)
        tmp = target.with_name(target.name + ".pgwarden-fix")
        tmp.write_text(fx.new, encoding="utf-8")
        tmp.replace(target)
