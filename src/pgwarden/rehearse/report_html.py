"""A self-contained HTML report of a rehearsal: one file, inline SVG charts, no network."""

from __future__ import annotations

from html import escape
from pathlib import Path

from pgwarden.errors import InputError
from pgwarden.rehearse.charts import MISSING, MODE_COLORS, available, timeline_svg, workload_svg
from pgwarden.rehearse.model import RehearsalResult, StepTrace
from pgwarden.rehearse.null_window import CODE, headline

__all__ = ["render_html", "write_report"]

DASH = "&ndash;"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
 margin:24px auto;max-width:1250px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
.wide{overflow-x:auto}
th{background:#f5f5f5}
td.num{text-align:right;white-space:nowrap}
code{font:12px ui-monospace,Menlo,Consolas,monospace}
.meta{color:#555}
.sev-error{color:#b10026;font-weight:600}
.sev-warning{color:#b35806;font-weight:600}
.sev-note{color:#555}
.status-failed,.status-interrupted{color:#b10026;font-weight:600}
.status-completed,.status-ok{color:#1a7f37}
.mode{display:inline-block;padding:0 5px;border-radius:3px;margin:1px 4px 1px 0;font-size:11.5px;
 white-space:nowrap}
.est{color:#555;font-style:italic}
.chart svg{max-width:100%;height:auto}
.note{background:#fff8e1;padding:6px 10px;border-left:3px solid #f0b400;margin:6px 0}
.hazard{background:#fdecee;padding:8px 12px;border-left:4px solid #b10026;margin:12px 0}
.hazard p{margin:4px 0}
"""


def _mode(m: str) -> str:
    return f'<span class="mode" style="background:{MODE_COLORS.get(m, "#eee")}">{escape(m)}</span>'


def _breakable(text: str) -> str:
    """Escaped, with line-break opportunities after / . _ (paths, qualified names)."""
    out = escape(text)
    for ch in "/._":
        out = out.replace(ch, f"{ch}<wbr>")
    return out


def _s(x: float | None, digits: int = 3) -> str:
    return DASH if x is None else f"{x:.{digits}f}"


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024
    return f"{n:.1f} GB"


def _row(cells: list[str], *, tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}{c}" for c in cells) + "</tr>"


def _blocking(s: StepTrace) -> str:
    parts = []
    for b in s.blocking:
        if b.reads_blocked_s <= 0 and b.writes_blocked_s <= 0:
            continue
        est = ""
        if b.est_writes_blocked_s is not None and s.scale not in (None, 1.0):
            est = (
                f' <span class="est">(est. production: reads {_s(b.est_reads_blocked_s, 1)} s, '
                f"writes {_s(b.est_writes_blocked_s, 1)} s)</span>"
            )
        parts.append(
            f"{_breakable(b.table)}: reads {_s(b.reads_blocked_s)} s, "
            f"writes {_s(b.writes_blocked_s)} s{est}"
        )
    return "<br>".join(parts) or "none"


def _step_row(s: StepTrace, hazard: bool = False) -> str:
    modes = " ".join(f"{_mode(m)}{_breakable(r)}<br>" for r, m in sorted(s.strongest().items()))
    err = ""
    if s.error is not None:
        err = f"<br><b>{escape(s.error.message)}</b><br>{escape(s.error.cluster_state)}"
    diffs = "".join(
        f"<br><b>lock model bug</b>: {escape(d.relation)} observed "
        f"{escape(d.observed or 'none')}, modelled {escape(d.modelled or 'none')}"
        for d in s.model_diffs
    )
    est = ""
    if s.scale not in (None, 1.0):
        est = f'<br><span class="est">est. production {_s(s.est_duration_s, 2)} s</span>'
    return _row(
        [
            f" class=num>{s.index}</td>",
            f"><code>{escape(s.sql)}</code><br>"
            f'<span class="meta">{_breakable(s.location)}</span>{err}{diffs}</td>',
            f' class="status-{s.status}">{s.status}'
            + (f"<br>deploy hazard ({CODE})" if hazard else "")
            + "</td>",
            f" class=num>{_s(s.statement_s)}{est}</td>",
            f" class=num>{_s(s.acquire_s)}</td>",
            f">{modes or DASH}</td>",
            f">{escape(', '.join(s.rewrites)) or DASH}</td>",
            f" class=num>{s.rows_read:,} / {s.rows_written:,}<br>{_bytes(s.bytes_touched)}</td>",
            f" class=num>{_bytes(s.wal_bytes)}</td>",
            f" class=num>{s.temp_files} ({_bytes(s.temp_bytes)})</td>",
            f">{_blocking(s)}</td>",
        ]
    )


def _steps(result: RehearsalResult) -> str:
    heads = [
        "#",
        "statement",
        "status",
        "statement s",
        "lock wait s",
        "locks held (strongest)",
        "rewritten",
        "rows read / written, bytes",
        "WAL",
        "temp files",
        "probe traffic blocked (longest wait)",
    ]
    head = _row([f">{h}</th>" for h in heads], tag="th")
    hazards = {f.step for f in result.findings if f.code == CODE}
    rows = "".join(_step_row(s, s.index in hazards) for s in result.steps)
    return f'<div class="wide"><table>{head}{rows}</table></div>'


def _workload(result: RehearsalResult) -> str:
    if not result.workload:
        return "<p class=meta>No workload given (--workload FILE).</p>"
    rows = []
    for w in result.workload:
        ratio = w.ratio
        cls = "sev-error" if ratio is not None and ratio >= 1.5 else ""
        b_err = f" {escape(w.before.error)}" if w.before.error else ""
        a_err = f" {escape(w.after.error)}" if w.after.error else ""
        rows.append(
            _row(
                [
                    f">{escape(w.name)}<br><code>{escape(w.sql[:200])}</code></td>",
                    f" class=num>{w.weight:g}</td>",
                    f" class=num>{_s(w.before.median_ms)}{b_err}</td>",
                    f" class=num>{_s(w.after.median_ms)}{a_err}</td>",
                    f' class="num {cls}">{_s(ratio, 2)}{"" if ratio is None else "&times;"}</td>',
                    f">{escape('; '.join(w.changes)) or 'same plan'}</td>",
                ]
            )
        )
    heads = ["query", "weight", "before ms", "after ms", "ratio", "plan changes"]
    head = _row([f">{h}</th>" for h in heads], tag="th")
    return f"<table>{head}{''.join(rows)}</table>"


def _hazards(result: RehearsalResult) -> str:
    """A box per deploy hazard that stopped the rehearsal (RH103): what, where, what to do."""
    boxes = [
        f'<div class="hazard"><b>Deploy hazard ({f.code} {escape(f.name)}) at step {f.step}'
        f"</b> &middot; {_breakable(str(f.location))}<p>{escape(f.message)}.</p>"
        f"<p><b>What to do:</b> {escape(f.help)}.</p><p class=meta>In production the "
        "migration stops at this step too whenever the application inserts rows in that "
        "window; the rehearsal stopped there, and the steps after it were not run.</p></div>"
        for f in result.findings
        if f.code == CODE
    ]
    return "".join(boxes)


def _findings(result: RehearsalResult) -> str:
    if not result.findings:
        return "<p>No findings.</p>"
    rows = [
        _row(
            [
                f' class="sev-{f.severity.value}">{f.severity.value}</td>',
                f">{f.code}<br>{_breakable(f.name)}</td>",
                f">{escape(f.message)}<br><i>{escape(f.help)}</i></td>",
                f">{_breakable(str(f.location))}</td>",
            ]
        )
        for f in result.findings
    ]
    heads = ("severity", "code", "what happens / what to do", "where")
    head = _row([f">{h}</th>" for h in heads], tag="th")
    return f"<table>{head}{''.join(rows)}</table>"


def _tables(result: RehearsalResult) -> str:
    rows = [
        _row(
            [
                f">{escape(t.name)}</td>",
                f" class=num>{t.rows:,}{' copied' if t.copied else ''}</td>",
                f" class=num>{_bytes(t.total_bytes)}</td>",
                f" class=num>{DASH if t.prod_rows is None else f'{t.prod_rows:,}'}</td>",
                f" class=num>{_bytes(t.prod_total_bytes) if t.prod_total_bytes else DASH}</td>",
            ]
        )
        for t in result.tables
    ]
    heads = ["table", "rows here", "size here", "rows in production", "size in production"]
    return f"<table>{_row([f'>{h}</th>' for h in heads], tag='th')}{''.join(rows)}</table>"


def render_html(result: RehearsalResult, *, charts: bool = True) -> str:
    """The report as one HTML document (`charts=False`: without the matplotlib charts)."""
    notes = "".join(f'<div class="note">{escape(n)}</div>' for n in result.notes)
    if not charts:
        notes += f'<div class="note">{escape(MISSING)}</div>'
    wl_chart = workload_svg(result) if charts else ""
    wl_block = f'<div class="chart">{wl_chart}</div>' if wl_chart else ""
    timeline = f'<div class="chart">{timeline_svg(result)}</div>' if charts else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pgwarden rehearsal {result.fingerprint[:12]}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>pgwarden rehearsal: <span class="status-{result.status}">'
        f"{escape(headline(result.status, result.findings))}</span></h1>",
        f'<div class="meta">plan {result.fingerprint[:16]}&hellip; &middot; '
        f"{escape(result.target)} &middot; schema: {escape(result.schema_source)} &middot; "
        f"data load {result.load_s:.1f} s &middot; total {result.total_s:.1f} s</div>"
        f"{_hazards(result)}{notes}",
        f"<h2>Findings ({len(result.findings)})</h2>{_findings(result)}",
        "<h2>Timeline: steps, locks held, blocked probe traffic</h2>",
        timeline,
        '<p class="meta">Production figures are estimates: durations and waits of steps that '
        "scan or rewrite a table, scaled linearly by its size in the stats snapshot.</p>",
        f"<h2>Steps</h2>{_steps(result)}",
        f"<h2>Workload before / after</h2>{wl_block}{_workload(result)}",
        "<h2>Synthetic data</h2>"
        + (
            '<p class="meta">Rows marked copied are the source database&rsquo;s own '
            "(copy_data); the others are synthetic.</p>"
            if any(t.copied for t in result.tables)
            else ""
        )
        + _tables(result),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(result: RehearsalResult, path: Path) -> bool:
    """Write the report (atomically); False when it has no charts (no matplotlib)."""
    charts = available()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(render_html(result, charts=charts), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot write the report: {exc.strerror}", path=str(path)
        ) from None
    return charts
