"""Lint findings for people: file:line:col, excerpt, what happens, help, fix."""

from __future__ import annotations

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from pgwarden.findings import Severity
from pgwarden.lint.engine import LintResult
from pgwarden.plan import Plan

__all__ = ["render_lint"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.NOTE: "cyan"}


def render_lint(console: Console, plan: Plan, result: LintResult, *, show_fix: bool = True) -> None:
    """Print each finding, then a summary line."""
    steps = {s.index: s for s in plan.steps}
    for f in result.findings:
        head = Text()
        head.append(f"{f.location}: ", style="bold")
        head.append(f.severity.value, style=_STYLE[f.severity])
        head.append(f" {f.code} {f.name}", style="bold")
        console.print(head)
        step = steps.get(f.step) if f.step is not None else None
        if step is not None:
            excerpt = (
                step.sql
                if step.sql.count("\n") < 6
                else "\n".join(step.sql.splitlines()[:6]) + "\n..."
            )
            console.print(
                Syntax(
                    excerpt,
                    "sql",
                    theme="ansi_dark",
                    background_color="default",
                    line_numbers=True,
                    start_line=step.location.line,
                ),
                soft_wrap=True,
            )
        console.print(Text("  ") + Text(f.message))
        console.print(Text("  help: ", style="bold") + Text(f.help))
        if show_fix and f.fix:
            console.print(Text("  fix:", style="bold green"))
            console.print(Text("    " + f.fix.sql.replace("\n", "\n    "), style="green"))
            if not f.fix.mechanical:
                console.print(Text(f"  --fix leaves this one: {f.fix.why_not}", style="dim"))
        console.print()
    for a in result.assumptions:
        console.print(Text(f"assumed: {a}", style="dim"))
    counts = ", ".join(
        f"{result.count(s)} {s.value}{'s' if result.count(s) != 1 else ''}" for s in Severity
    )
    sup = f", {len(result.suppressed)} suppressed" if result.suppressed else ""
    console.print(
        Text(
            f"{len(plan.sources)} file(s), {len(plan.steps)} statement(s): {counts}{sup}",
            style="bold",
        )
    )
