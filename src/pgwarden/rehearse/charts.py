"""Charts for the HTML report, drawn with matplotlib and returned as inline SVG text.

matplotlib's object API (`Figure`, no pyplot, no global backend) renders to
SVG with text kept as text, so the report is one file that needs no network
and no JavaScript. matplotlib is an optional dependency (`pgwarden[report]`).
"""

from __future__ import annotations

import io
from typing import Any

from pgwarden.analysis.effects import LockMode
from pgwarden.rehearse.model import RehearsalResult

__all__ = ["MISSING", "MODE_COLORS", "available", "timeline_svg", "workload_svg"]

# What the report and the terminal say when matplotlib is not installed.
MISSING = (
    "the report has no charts: matplotlib is not installed "
    "(pip install 'pgwarden[report]' to draw them)"
)

MODE_COLORS: dict[str, str] = {
    "ACCESS SHARE": "#c7e9c0",
    "ROW SHARE": "#a1d99b",
    "ROW EXCLUSIVE": "#74c476",
    "SHARE UPDATE EXCLUSIVE": "#fdd0a2",
    "SHARE": "#fdae6b",
    "SHARE ROW EXCLUSIVE": "#fd8d3c",
    "EXCLUSIVE": "#e6550d",
    "ACCESS EXCLUSIVE": "#a63603",
}
BLOCKED = "#cb181d"


def available() -> bool:
    """Whether matplotlib can be imported (the charts need it; the report does not)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _svg(fig: Any) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pgwarden"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _rank(mode: str) -> int:
    try:
        return int(LockMode[mode.replace(" ", "_")])
    except KeyError:
        return 0


def _strongest(modes: list[str]) -> str:
    return max(modes, key=lambda m: LockMode[m.replace(" ", "_")])


def timeline_svg(result: RehearsalResult) -> str:
    """Steps, locks held per relation (by mode) and blocked probe operations over time."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    steps = [s for s in result.steps if s.end_s > s.start_s]
    end = max((s.end_s for s in steps), default=1.0)
    start = min((s.start_s for s in steps), default=0.0)
    span = max(end - start, 1e-3)
    lanes: list[tuple[str, list[tuple[float, float, str, str]]]] = []  # label, (x, w, color, hatch)
    minw = span * 0.004
    step_bars = []
    for s in steps:
        modes = list(s.strongest().values())
        color = MODE_COLORS[_strongest(modes)] if modes else "#bdbdbd"
        step_bars.append((s.start_s, max(s.duration_s, minw), color, ""))
    lanes.append(("steps", step_bars))
    held = result.extra.get("locks", [])
    assert isinstance(held, list)
    tables = {t.name for t in result.tables}
    used: set[str] = set()
    for rel in sorted({str(h[0]) for h in held} & tables):
        bars = []
        mine = sorted((h for h in held if h[0] == rel), key=lambda h: _rank(str(h[1])))
        for _rel, mode, h_start, h_end, granted in mine:  # strongest drawn last, on top
            used.add(str(mode))
            width = max(float(h_end) - float(h_start), minw)
            color = MODE_COLORS.get(str(mode), "#999")
            bars.append((float(h_start), width, color, "" if granted else "///"))
        lanes.append((f"lock on {rel}", bars))
    blocked = result.extra.get("probe_blocked", [])
    assert isinstance(blocked, list)
    for table in sorted(
        {str(b[0]) for b in blocked} | {b.table for s in steps for b in s.blocking}
    ):
        for kind in ("read", "write"):
            bars = [
                (float(b[2]), max(float(b[3]) - float(b[2]), minw), BLOCKED, "")
                for b in blocked
                if b[0] == table and b[1] == kind
            ]
            lanes.append((f"{kind}s blocked: {table}", bars))
    fig = Figure(figsize=(11, 0.5 * len(lanes) + 1.6))
    ax = fig.add_subplot()
    for i, (_label, bars) in enumerate(reversed(lanes)):
        for x, w, color, hatch in bars:
            ax.broken_barh(
                [(x, w)],
                (i - 0.35, 0.7),
                facecolors=color,
                hatch=hatch,
                edgecolor="#555",
                linewidth=0.3,
            )
    for s in steps:
        ax.axvline(s.start_s, color="#ddd", linewidth=0.6, zorder=0)
        ax.text(s.start_s, len(lanes) - 0.45, str(s.index), fontsize=7, color="#444", va="bottom")
    ax.set_yticks(range(len(lanes)), [label for label, _ in reversed(lanes)], fontsize=8)
    ax.set_xlim(start - span * 0.01, end + span * 0.02)
    ax.set_ylim(-0.6, len(lanes) - 0.1)
    ax.set_xlabel("seconds since the first step (rehearsal cluster)")
    ax.grid(axis="x", color="#eee")
    used |= {m for s in steps for m in s.strongest().values()}
    handles = [
        Patch(facecolor=c, edgecolor="#555", label=m) for m, c in MODE_COLORS.items() if m in used
    ]
    handles.append(Patch(facecolor=BLOCKED, label="probe blocked"))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    return _svg(fig)


def workload_svg(result: RehearsalResult) -> str:
    """Median latency per workload query, before and after the migration."""
    from matplotlib.figure import Figure

    rows = [
        w
        for w in result.workload
        if w.before.median_ms is not None or w.after.median_ms is not None
    ]
    if not rows:
        return ""
    fig = Figure(figsize=(11, 0.45 * len(rows) + 1.2))
    ax = fig.add_subplot()
    ys = range(len(rows))
    before = [w.before.median_ms or 0.0 for w in rows]
    after = [w.after.median_ms or 0.0 for w in rows]
    ax.barh([y + 0.2 for y in ys], before, height=0.38, color="#6baed6", label="before")
    ax.barh([y - 0.2 for y in ys], after, height=0.38, color="#fd8d3c", label="after")
    ax.set_yticks(list(ys), [w.name for w in rows], fontsize=8)
    ax.invert_yaxis()
    if (
        max(after + before + [0.0]) > 0
        and max(after + before)
        / max(min(x for x in after + before if x > 0) if any(after + before) else 1, 1e-6)
        > 50
    ):
        ax.set_xscale("log")
    ax.set_xlabel("median execution time, ms (EXPLAIN ANALYZE)")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="x", color="#eee")
    return _svg(fig)
