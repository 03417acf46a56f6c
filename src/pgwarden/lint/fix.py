"""`lint --fix`: rewrite files into their safe form, where a mechanical one exists.

A rule's fix is SQL replacing its statement. Statements after a
`-- in a separate transaction:` line must run after the first part commits
(VALIDATE CONSTRAINT, SET NOT NULL after a validated CHECK). The rewritten file
is laid out so that every transaction is short and every lock wait is bounded:

    SET lock_timeout = '1s';          -- when a rule asked for one
    BEGIN; ...statements that ran in one transaction, in order...; COMMIT;
    CREATE INDEX CONCURRENTLY ...;    -- statements that cannot run in a transaction
    BEGIN; VALIDATE ...; COMMIT;      -- each deferred part in its own transaction
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse
from pgwarden.findings import Finding
from pgwarden.lint.engine import LintResult
from pgwarden.plan import Plan, SourceText, Step, TxMode
from pgwarden.rules.pw122_lock_timeout_too_long import bearable_ms, blocked_rate

__all__ = ["SEPARATE", "FileFix", "fix_plan", "write_fixes"]

SEPARATE = "-- in a separate transaction:"
TIMEOUT_RULES = frozenset({"PW120", "PW122"})
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


def _split_fix(fix: str) -> tuple[list[str], list[list[str]]]:
    """(statements replacing the original, later transactions)."""
    parts = [[s.text.strip() for s in parse(part)] for part in fix.split(SEPARATE)]
    return parts[0], [p for p in parts[1:] if p]


def _transactional(sql: str) -> bool:
    return all(analyse(s.tree).transactional for s in parse(sql))


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


def _rewrite_file(
    source: SourceText, steps: list[Step], findings: list[Finding], snapshot: Snapshot | None
) -> FileFix | None:
    path, text = source.path, source.text
    by_step: dict[int, list[Finding]] = {}
    for f in findings:
        if f.step is not None and f.fix:
            by_step.setdefault(f.step, []).append(f)
    if not by_step:
        return None
    wants_timeout = any(f.code in TIMEOUT_RULES for fs in by_step.values() for f in fs)
    one_transaction = any(s.tx_mode is not TxMode.AUTOCOMMIT for s in steps)
    main: list[str] = []
    outside: list[str] = []
    later: list[list[str]] = []
    fixed: list[Finding] = []
    for step in steps:
        if step.is_transaction_control:
            continue
        if step.kind == "VariableSetStmt" and step.body.get("name") == "lock_timeout":
            continue  # replaced by the prologue's bounded timeout
        structural = [f for f in by_step.get(step.index, []) if f.code not in TIMEOUT_RULES]
        fixed.extend(f for f in by_step.get(step.index, []) if f.code in TIMEOUT_RULES)
        if structural:
            first, rest = _split_fix(structural[0].fix or "")
            fixed.append(structural[0])
            later.extend(rest)
        else:
            first = [step.sql.strip()]
        for sql in first:
            (main if _transactional(sql) else outside).append(sql)
    first_start = min((s.location.line for s in steps), default=1)
    header = [ln for ln in text.splitlines()[: first_start - 1] if ln.strip()]
    out: list[str] = [*header, "-- Rewritten by `pgwarden lint --fix` for safe deployment."]
    if wants_timeout:
        out += [
            "-- Every lock wait is bounded; retry the file if a statement times out.",
            f"SET lock_timeout = '{_timeout_ms(steps, snapshot)}ms';",
        ]
    if main:
        block = [f"{s};" for s in main]
        out += ["BEGIN;", *block, "COMMIT;"] if one_transaction and len(main) > 1 else block
    out += [f"{s};" for s in outside]
    for group in later:
        out += ["BEGIN;", *(f"{s};" for s in group), "COMMIT;"]
    new = "\n".join(out) + "\n"
    return FileFix(path, text, new, tuple(fixed))


def fix_plan(plan: Plan, result: LintResult, snapshot: Snapshot | None = None) -> list[FileFix]:
    """The rewrite of every file that has at least one mechanical fix."""
    fixes: list[FileFix] = []
    for source in plan.texts:
        steps = [s for s in plan.steps if s.location.path == source.path]
        step_ids = {s.index for s in steps}
        mine = [f for f in result.findings if f.step in step_ids]
        fx = _rewrite_file(source, steps, mine, snapshot)
        if fx is not None and fx.new != fx.old:
            fixes.append(fx)
    return fixes


def write_fixes(fixes: list[FileFix]) -> None:
    """Write each rewrite in place (temp name, then rename)."""
    for fx in fixes:
        target = Path(fx.path)
        tmp = target.with_name(target.name + ".pgwarden-fix")
        tmp.write_text(fx.new, encoding="utf-8")
        tmp.replace(target)
