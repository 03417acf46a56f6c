"""Terminal summary of a rehearsal (rich): steps, locks, blocked traffic, workload, findings."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pgwarden.rehearse.charts import MISSING, available
from pgwarden.rehearse.model import RehearsalResult
from pgwarden.rehearse.null_window import CODE, headline
from pgwarden.sources.labels import statement_label

__all__ = ["render_text"]


def render_text(console: Console, result: RehearsalResult) -> None:
    """Print the rich summary of `result` to `console`."""
    colour = {"completed": "green", "failed": "red", "interrupted": "red"}[result.status]
    console.print(
        f"[bold]rehearsal {headline(result.status, result.findings)}[/] [{colour}]●[/] on "
        f"{escape(result.target)}; schema: {escape(result.schema_source)}; "
        f"plan {result.fingerprint[:12]}"
    )
    for f in result.findings:
        if f.code == CODE:
            console.print(
                f"  step {f.step} cannot run while the application inserts rows as it does "
                f"now ({f.code} below, at {escape(str(f.location))}): production would stop "
                "there too; the steps after it were not run",
                highlight=False,
            )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    table = Table(show_lines=False, header_style="bold")
    for col in ("#", "statement", "status", "s", "locks held", "blocked (longest wait)"):
        table.add_column(col, overflow="fold")
    for s in result.steps:
        locks = ", ".join(  # a TOAST table is locked with its table: not shown apart
            f"{m} {r}"
            for r, m in sorted(s.strongest().items())
            if m != "ACCESS SHARE" and not r.startswith("pg_toast.")
        )
        blocked = "; ".join(
            f"{b.table}: reads {b.reads_blocked_s:.3f} s, writes {b.writes_blocked_s:.3f} s"
            + (
                f" (est. prod reads {b.est_reads_blocked_s:.1f} s, "
                f"writes {b.est_writes_blocked_s:.1f} s)"
                if b.est_writes_blocked_s is not None
                and b.est_reads_blocked_s is not None
                and s.scale not in (None, 1.0)
                else ""
            )
            for b in s.blocking
            if b.reads_blocked_s > 0 or b.writes_blocked_s > 0
        )
        status = s.status if s.error is None else f"{s.status}: {s.error.message}"
        table.add_row(
            str(s.index),
            escape(statement_label(s.sql, 70)),
            escape(status),
            f"{s.statement_s:.3f}",
            escape(locks or "-"),
            escape(blocked or "none"),
        )
    console.print(table)
    for w in result.workload:
        if w.before.error or w.after.error:
            console.print(
                f"  workload {escape(w.name)}: [red]error[/] before: "
                f"{escape(w.before.error or 'ok')}; after: {escape(w.after.error or 'ok')}"
            )
            continue
        ratio = f"{w.ratio:.2f}x" if w.ratio is not None else "n/a"
        console.print(
            f"  workload {escape(w.name)}: {w.before.median_ms or 0:.3f} ms -> "
            f"{w.after.median_ms or 0:.3f} ms "
            f"({ratio}){escape('; ' + '; '.join(w.changes)) if w.changes else ''}"
        )
    for f in result.findings:
        style = {"error": "bold red", "warning": "yellow", "note": "dim"}[f.severity.value]
        console.print(
            f"[{style}]{f.severity.value}[/] {f.code} {escape(str(f.location))}: "
            f"{escape(f.message)}",
            highlight=False,
        )
        console.print(f"  [dim]help:[/] {escape(f.help)}", highlight=False)
    if any(
        b.est_reads_blocked_s is not None and s.scale not in (None, 1.0)
        for s in result.steps
        for b in s.blocking
    ):
        console.print(
            "[dim]Production figures are estimates (linear in table size from the stats "
            "snapshot).[/]"
        )
    if result.report_path:
        console.print(f"report: {escape(str(result.report_path))}")
        if not available():
            console.print(f"[yellow]note:[/] {escape(MISSING)}")
    if result.record_path:
        console.print(f"record: {escape(str(result.record_path))}")
