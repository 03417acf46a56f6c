"""Lint findings for people: file:line:col, excerpt, what happens, help, fix, rule page.

On a terminal long lines wrap to its width; piped to a file or a CI log nothing
is wrapped (one finding header per line, fix SQL intact). A help text repeated
within one file is printed once, at its first use, with the other locations;
the fixes of several findings on one statement are printed once, merged.
"""

from __future__ import annotations

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from pgwarden.findings import Finding, Severity
from pgwarden.lint.engine import LintResult, merged_fixes
from pgwarden.plan import Plan
from pgwarden.report.lint_docs import rule_doc_url

__all__ = ["render_lint"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}


def _help_plan(findings: tuple[Finding, ...]) -> dict[int, list[str]]:
    """For each finding (by position) that prints a help text, the other locations it covers."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, f in enumerate(findings):
        groups.setdefault((f.location.path, f.code, f.help), []).append(i)
    out: dict[int, list[str]] = {}
    for members in groups.values():
        out[members[0]] = [
            f"{findings[i].location.line}:{findings[i].location.column}" for i in members[1:]
        ]
    return out


def render_lint(console: Console, plan: Plan, result: LintResult, *, show_fix: bool = True) -> None:
    """Print each finding, then a summary line."""
    wrap = not console.is_terminal  # soft wrap: no hard line breaks in files and CI logs
    steps = {s.index: s for s in plan.steps}
    helps = _help_plan(result.findings)
    merged = merged_fixes(result.findings)
    last_of_step = {f.step: i for i, f in enumerate(result.findings) if f.fix is not None}

    def line(text: Text) -> None:
        console.print(text, soft_wrap=wrap, crop=not wrap)

    for i, f in enumerate(result.findings):
        head = Text()
        head.append(f"{f.location}: ", style="bold")
        head.append(f.severity.value, style=_STYLE[f.severity])
        head.append(f" {f.code} {f.name}", style="bold")
        line(head)
        step = steps.get(f.step) if f.step is not None else None
        if step is not None:
            # A finding deep inside a DO block: show the lines around it, not the block's head.
            first = max(0, f.location.line - step.location.line - 2)
            if first < 4 or f.location.path != step.location.path:
                first = 0
            rest = step.sql.splitlines()[first:]
            excerpt = (
                step.sql
                if not first and step.sql.count("\n") < 6
                else "\n".join(rest[:6]) + ("\n..." if len(rest) > 6 else "")
            )
            console.print(
                Syntax(
                    excerpt,
                    "sql",
                    theme="ansi_dark",
                    background_color="default",
                    line_numbers=True,
                    start_line=step.location.line + first,
                ),
                soft_wrap=True,
            )
        line(Text("  ") + Text(f.message))
        if i in helps:
            line(Text("  help: ", style="bold") + Text(f.help))
            if helps[i]:
                line(Text(f"  (the same help for {f.code} at {', '.join(helps[i])} below)"))
        line(Text("  docs: ", style="bold") + Text(rule_doc_url(f.code)))
        if show_fix and f.step is not None and last_of_step.get(f.step) == i:
            codes, fix = merged[f.step]
            label = f"  fix ({', '.join(codes)}):" if len(codes) > 1 else "  fix:"
            line(Text(label, style="bold green"))
            line(Text("    " + fix.sql.replace("\n", "\n    "), style="green"))
            if not fix.mechanical:
                line(Text(f"  --fix leaves this one: {fix.why_not}", style="dim"))
        elif show_fix and f.step is None and f.fix is not None:
            line(Text("  fix:", style="bold green"))
            line(Text("    " + f.fix.sql.replace("\n", "\n    "), style="green"))
        console.print()
    for a in result.assumptions:
        line(Text(f"assumed: {a}", style="dim"))
    counts = ", ".join(
        f"{result.count(s)} {s.value}{'s' if result.count(s) != 1 else ''}" for s in Severity
    )
    sup = f", {len(result.suppressed)} suppressed" if result.suppressed else ""
    line(
        Text(
            f"{len(plan.sources)} file(s), {len(plan.steps)} statement(s): {counts}{sup}",
            style="bold",
        )
    )
    from pgwarden.lint.ignore_sources import suppressed_summary

    for g in suppressed_summary(result):
        line(Text(f"  {g.count} suppressed by {g.by}: {g.reason}", style="dim"))
