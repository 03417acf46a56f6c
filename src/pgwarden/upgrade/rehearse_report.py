"""Text and self-contained HTML renderings of `upgrade rehearse`."""

from __future__ import annotations

from html import escape
from pathlib import Path

from pgwarden.errors import InputError
from pgwarden.rehearse.model import QueryRun
from pgwarden.upgrade.rehearse import UpgradeRehearsal

__all__ = ["rehearsal_lines", "render_html", "write_report"]

DASH = "&ndash;"


def _ms(run: QueryRun | None) -> str:
    if run is None:
        return "-"
    if run.error:
        return f"error: {run.error}"
    return "plan only" if run.median_ms is None else f"{run.median_ms:.3f}"


def _plan(run: QueryRun | None) -> str:
    if run is None or run.error:
        return ""
    parts = [f"index {i}" for i in run.indexes] + [f"seq scan {t}" for t in run.seq_scans]
    return ", ".join(parts)


def rehearsal_lines(r: UpgradeRehearsal) -> list[str]:
    """The rehearsal as lines of text (no markup)."""
    lines = [
        f"upgrade rehearsal: {r.status} - {r.database}, PostgreSQL {r.source_version} -> "
        f"{r.target_version}, pg_upgrade --{r.mode}",
    ]
    if r.copy is not None:
        lines.append(f"  copy: {r.copy.label} ({r.copy.kind})")
    lines.append("")
    lines.append("phases:")
    width = max((len(p.name) for p in r.phases), default=10)
    for p in r.phases:
        detail = f"  ({p.detail})" if p.detail and p.name not in ("dump", "restore") else ""
        lines.append(f"  {p.name:<{width}}  {p.seconds:8.2f} s{detail}")
    lines.append(f"  {'total':<{width}}  {r.total_s:8.2f} s")
    if r.downtime_s is not None:
        lines.append(
            f"  the database is down for about {r.downtime_s:.1f} s on this route "
            "(pg_upgrade and the restart; a copy this size)"
        )
    for s in r.stats_stages:
        lines.append(f"  statistics: {s.name} done after {s.seconds:.2f} s")
    if r.queries:
        lines.append("")
        lines.append(f"workload ({r.workload_source}), median ms:")
        lines.append("  query                   before    right after  after analyze")
        for i, q in enumerate(r.queries):
            b = r.before[i] if i < len(r.before) else None
            ra = r.right_after[i] if i < len(r.right_after) else None
            aa = r.after_analyze[i] if i < len(r.after_analyze) else None
            lines.append(f"  {q.name[:20]:<20} {_ms(b):>10} {_ms(ra):>14} {_ms(aa):>14}")
    lines.append("")
    if r.regressions:
        lines.append(f"regressions ({len(r.regressions)}):")
        for g in r.regressions:
            ratio = "" if g.ratio is None else f", {g.ratio:.2f}x"
            what = "; ".join(g.changes) or "slower with the same plan"
            lines.append(f"  {g.query} {g.when}: {what}{ratio}")
        sql_of = {q.name: q.sql for q in r.queries}
        for name in dict.fromkeys(g.query for g in r.regressions):
            lines.append(f"  {name}: {' '.join(sql_of.get(name, '').split())[:160]}")
    elif r.status == "completed":
        lines.append("no plan regressions")
    for note in r.notes:
        lines.append(f"note: {note}")
    lines += _refusal_lines(r)
    lines += _findings_lines(r)
    lines += _post_upgrade_lines(r)
    return lines


def _refusal_lines(r: UpgradeRehearsal) -> list[str]:
    """What pg_upgrade refused: its failed checks and the objects of the files it wrote."""
    failed = next((o for o in (r.upgrade, r.check) if o is not None and not o.ok), None)
    if failed is None:
        return []
    lines = ["", f"pg_upgrade{' --check' if failed.check_only else ''} refused:"]
    lines += [f"  failed check: {c}" for c in failed.failed_checks]
    for name, text in failed.reports:
        rows = [ln.strip() for ln in text.splitlines() if ln.strip()]
        lines.append(f"  {name}:")
        lines += [f"    {ln}" for ln in rows[:20]]
        if len(rows) > 20:
            lines.append(f"    ... and {len(rows) - 20} more lines")
    lines.append(
        "  fix: change or remove the objects listed on production (or install what the "
        "target lacks), then rehearse again; `pgwarden upgrade check` explains each check"
    )
    return lines


def _findings_lines(r: UpgradeRehearsal) -> list[str]:
    """pg_upgrade's warnings and notices, each with the objects it listed."""
    if not r.findings:
        return []
    lines = ["", "pg_upgrade findings:"]
    for f in r.findings:
        lines.append(f"  {f.level} [{f.code}] {f.check}: {f.message}")
        lines += [f"    {o}" for o in f.objects[:20]]
        if len(f.objects) > 20:
            lines.append(f"    ... and {len(f.objects) - 20} more")
    return lines


def _phase_of(r: UpgradeRehearsal, command: str) -> str | None:
    """The rehearsal's phase that ran `command` (None: not run on the copy)."""
    if command not in r.ran_on_copy:
        return None
    return next((p.name for p in r.phases if p.detail == command), "?")


def _post_upgrade_lines(r: UpgradeRehearsal) -> list[str]:
    """The steps pg_upgrade asked for after the upgrade, and which this rehearsal ran."""
    if not r.post_upgrade:
        return []
    lines = ["", "after the upgrade, pg_upgrade asks for (run these on production too):"]
    for step in r.post_upgrade:
        lines.append(f"  {step.why}" + ("" if step.why.endswith(".") else ":"))
        for command in step.commands:
            phase = _phase_of(r, command)
            ran = f"   (ran on the copy: phase '{phase}')" if phase is not None else ""
            lines.append(f"    {command}{ran}")
    return lines


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
 margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#f5f5f5} td.num{text-align:right;white-space:nowrap}
code{font:12px ui-monospace,Menlo,Consolas,monospace} .meta{color:#555}
.bar{background:#4c78a8;height:10px;display:inline-block}
.bad{color:#b10026;font-weight:600} .good{color:#1a7f37}
.note{background:#fff8e1;padding:6px 10px;border-left:3px solid #f0b400;margin:6px 0}
"""


def _phases(r: UpgradeRehearsal) -> str:
    longest = max((p.seconds for p in r.phases), default=1.0) or 1.0
    rows = "".join(
        f"<tr><td>{escape(p.name)}</td><td class=num>{p.seconds:.2f} s</td>"
        f'<td><span class="bar" style="width:{max(1, int(400 * p.seconds / longest))}px">'
        f"</span> <span class=meta>{escape(p.detail)}</span></td></tr>"
        for p in r.phases
    )
    return (
        "<table><tr><th>phase</th><th>time</th><th></th></tr>"
        f"{rows}<tr><th>total</th><th class=num>{r.total_s:.2f} s</th><th></th></tr></table>"
    )


def _workload(r: UpgradeRehearsal) -> str:
    if not r.queries:
        return "<p class=meta>No workload (--workload FILE, --stats, or pg_stat_statements).</p>"
    bad = {(g.query, g.when) for g in r.regressions}
    rows = []
    for i, q in enumerate(r.queries):
        cells = [f"<td>{escape(q.name)}<br><code>{escape(q.sql[:300])}</code></td>"]
        for runs, when in (
            (r.before, ""),
            (r.right_after, "right after pg_upgrade"),
            (r.after_analyze, "after analyze"),
        ):
            run = runs[i] if i < len(runs) else None
            cls = ' class="num bad"' if (q.name, when) in bad else " class=num"
            cells.append(
                f"<td{cls}>{escape(_ms(run))}<br><span class=meta>{escape(_plan(run))}</span></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = (
        "<tr><th>query</th><th>before (ms, plan)</th><th>right after pg_upgrade</th>"
        "<th>after analyze</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _regressions(r: UpgradeRehearsal) -> str:
    if not r.regressions:
        return "<p class=good>No plan regressions.</p>" if r.status == "completed" else ""
    rows = "".join(
        f"<tr><td>{escape(g.query)}</td><td>{escape(g.when)}</td>"
        f"<td class=num>{DASH if g.ratio is None else f'{g.ratio:.2f}&times;'}</td>"
        f"<td>{escape('; '.join(g.changes) or 'slower with the same plan')}</td></tr>"
        for g in r.regressions
    )
    return (
        "<table><tr><th>query</th><th>when</th><th>ratio</th><th>plan changes</th></tr>"
        f"{rows}</table>"
    )


def _refusal(r: UpgradeRehearsal) -> str:
    """What pg_upgrade refused, with the object lists it wrote."""
    failed = next((o for o in (r.upgrade, r.check) if o is not None and not o.ok), None)
    if failed is None:
        return ""
    checks = "".join(f"<li>{escape(c)}</li>" for c in failed.failed_checks)
    files = "".join(
        f"<h3>{escape(name)}</h3><pre>{escape(text)}</pre>" for name, text in failed.reports
    )
    return (
        f"<h2>pg_upgrade{' --check' if failed.check_only else ''} refused</h2>"
        f"<ul>{checks}</ul><p>{escape(failed.message)}</p>{files}"
    )


def _after(r: UpgradeRehearsal) -> str:
    """pg_upgrade's findings and the steps it asked for, as HTML."""
    found = "".join(
        f"<li><b>{escape(f.level)}</b> <code>{escape(f.code)}</code> {escape(f.check)}: "
        f"{escape(f.message)}<ul>{''.join(f'<li>{escape(o)}</li>' for o in f.objects)}</ul></li>"
        for f in r.findings
    )
    steps = "".join(
        f"<li>{escape(p.why)}<ul>"
        + "".join(
            f"<li><code>{escape(c)}</code>"
            + (" <span class=meta>(ran on the copy)</span>" if c in r.ran_on_copy else "")
            + "</li>"
            for c in p.commands
        )
        + "</ul></li>"
        for p in r.post_upgrade
    )
    return (f"<h2>pg_upgrade findings</h2><ul>{found}</ul>" if found else "") + (
        f"<h2>After the upgrade</h2><ul>{steps}</ul>" if steps else ""
    )


def render_html(r: UpgradeRehearsal) -> str:
    """The rehearsal as one HTML document (no scripts, no network)."""
    notes = "".join(f'<div class="note">{escape(n)}</div>' for n in r.notes)
    stages = "".join(
        f"<li>{escape(s.name)}: done after {s.seconds:.2f} s</li>" for s in r.stats_stages
    )
    copy = "" if r.copy is None else f" &middot; copy: {escape(r.copy.label)} ({r.copy.kind})"
    down = (
        ""
        if r.downtime_s is None
        else f"<p>Down for about <b>{r.downtime_s:.1f} s</b> on this route "
        "(pg_upgrade and the restart, at this copy's size).</p>"
    )
    status_cls = "good" if r.status == "completed" else "bad"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pgwarden upgrade rehearsal {escape(r.source_version)} to "
        f"{escape(r.target_version)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>pgwarden upgrade rehearsal: <span class="{status_cls}">{escape(r.status)}</span>'
        "</h1>",
        f'<div class="meta">{escape(r.database)} &middot; PostgreSQL {escape(r.source_version)}'
        f" &rarr; {escape(r.target_version)} &middot; pg_upgrade --{escape(r.mode)}{copy}</div>",
        notes,
        _refusal(r),
        f"<h2>Phases</h2>{_phases(r)}{down}",
        f"<h2>Statistics</h2><ul>{stages}</ul>" if stages else "",
        f"<h2>Regressions</h2>{_regressions(r)}",
        _after(r),
        f"<h2>Workload</h2><p class=meta>{escape(r.workload_source)}</p>{_workload(r)}",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(r: UpgradeRehearsal, path: Path) -> None:
    """Write the HTML report atomically."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(render_html(r), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot write the report: {exc.strerror}", path=str(path)
        ) from None
