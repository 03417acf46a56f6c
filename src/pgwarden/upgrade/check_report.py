"""Plain-text rendering of `upgrade check` (one line per fact, objects indented)."""

from __future__ import annotations

from pgwarden.upgrade.check_run import CheckReport

__all__ = ["check_lines"]

_MARK = {"blocker": "BLOCKER", "warning": "warning", "note": "note"}


def check_lines(report: CheckReport) -> list[str]:
    """The report as lines of text (no markup)."""
    lines = [
        f"upgrade check: {report.database}, PostgreSQL {report.source_version} -> "
        f"{report.target_major} ({report.target})",
    ]
    for route, verdict in report.verdicts().items():
        n = len(report.blockers(route))  # type: ignore[arg-type]
        lines.append(
            f"  {route:<10} {verdict}" + (f" ({n} blocker{'s' if n != 1 else ''})" if n else "")
        )
    if report.copy is not None:
        lines.append(
            f"  pg_upgrade --check ran on a copy: {report.copy.label} "
            f"({report.copy.kind}, restored in {report.copy.restore_s:.1f} s)"
        )
    elif any(i.code == "pg-upgrade-check-not-run" for i in report.issues):
        lines.append(
            "  pg_upgrade --check not run: no copy could be made (pg-upgrade-check-not-run below)"
        )
    else:
        lines.append("  pg_upgrade --check not run (--copy none)")
    if not report.issues:
        lines.append("")
        lines.append("nothing found")
    for issue in report.issues:
        lines.append("")
        routes = " + ".join(issue.routes)
        where = f" in database {issue.database}:" if issue.database else ""
        lines.append(
            f"{_MARK[issue.severity.value]} [{issue.code}] ({routes}){where} {issue.message}"
        )
        for obj in issue.objects:
            lines.append(f"    {obj}")
        if issue.more:
            lines.append(f"    ... and {issue.more} more")
        lines.append(f"  fix: {issue.hint}")
    lines.append("")
    lines.append(f"checked in {report.seconds:.1f} s")
    return lines
