"""`pgwarden status` text: a run's steps, the break-glass records (who, when, why, which run)."""

from __future__ import annotations

from collections.abc import Sequence

from pgwarden.apply.status import BreakGlassRecord, StepStatus
from pgwarden.cli import out, styled
from pgwarden.sources.labels import statement_label

__all__ = ["render_break_glass", "render_steps"]


def render_break_glass(records: Sequence[BreakGlassRecord]) -> None:
    """One line per break-glass record, the latest first; nothing when there is none."""
    if not records:
        return
    out.print(styled("\n[bold red]break glass[/] (pgwarden.break_glass, latest first):"))
    for r in records:
        run = f"run {r.run_id}" if r.run_id else "no run"
        role = r.current_user + (
            f" (session {r.session_user})" if r.session_user != r.current_user else ""
        )
        out.print(
            styled(
                "  {} {} {} on {} by {}@{} as {}: [bold]{}[/]",
                f"{r.at:%Y-%m-%d %H:%M:%S}",
                r.command,
                run,
                r.environment,
                r.os_user,
                r.host,
                role,
                r.reason,
            )
        )


def render_steps(steps: Sequence[StepStatus]) -> None:
    """One line per step of a run: index, state, attempts, the statement's label."""
    for s in steps:
        pnr = " [red](point of no return)[/]" if s.point_of_no_return else ""
        tries = f" x{s.attempts}" if s.attempts > 1 else ""
        out.print(
            styled("  {:>3} {:<10}{} {}" + pnr, s.index, s.state, tries, statement_label(s.sql, 90))
        )
