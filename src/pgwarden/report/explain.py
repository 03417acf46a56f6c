"""Render `explain`: per statement, per relation, the lock and what it blocks."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pgwarden.analysis.context import Snapshot, estimate_seconds
from pgwarden.analysis.effects import RelationLock
from pgwarden.plan import Plan, Step
from pgwarden.sources.labels import statement_label

__all__ = ["explain_json", "render_explain"]


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _human_rows(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M rows"
    if n >= 1_000:
        return f"{n / 1e3:.0f}k rows"
    return f"{n} rows"


def _size(snapshot: Snapshot | None, relation: str) -> str:
    if snapshot is None:
        return ""
    t = snapshot.table(relation)
    if t is None:
        return ""
    return f"{_human_rows(t.rows)}, {_human_bytes(t.total_bytes)}"


def _duration(snapshot: Snapshot | None, relation: str, *, rewrite: bool) -> str:
    if snapshot is None:
        return ""
    t = snapshot.table(relation)
    if t is None:
        return ""
    return f" (~{estimate_seconds(t, rewrite=rewrite):.1f} s estimated)"


def _step_panel(step: Step, snapshot: Snapshot | None, *, expand: bool) -> Panel:
    eff = step.effects
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("relation")
    table.add_column("kind")
    table.add_column("lock")
    table.add_column("blocks")
    table.add_column("size")
    table.add_column("why")
    strongest: dict[str, RelationLock] = {}
    for lock in eff.locks:
        if lock.relation not in strongest or lock.mode > strongest[lock.relation].mode:
            strongest[lock.relation] = lock
    for lock in sorted(strongest.values(), key=lambda lk: (-lk.mode, lk.relation)):
        style = "red" if lock.mode.blocks_reads else "yellow" if lock.mode.blocks_writes else ""
        table.add_row(
            Text(lock.relation),
            Text(lock.relkind),
            Text(lock.mode.title, style=style),
            Text(lock.mode.blocks),
            Text(_size(snapshot, lock.relation)),
            Text(lock.reason),
        )
    lines: list[Any] = [table] if eff.locks else [Text("takes no table locks")]
    for rel in eff.rewrites:
        lines.append(Text(f"rewrites {rel}{_duration(snapshot, rel, rewrite=True)}", style="red"))
    for rel in eff.scans:
        lines.append(
            Text(f"scans {rel} under lock{_duration(snapshot, rel, rewrite=False)}", style="yellow")
        )
    for what in eff.destroys:
        lines.append(Text(f"destroys {what}", style="bold red"))
    if not eff.transactional:
        lines.append(Text("cannot run inside a transaction block"))
    for a in eff.assumptions:
        lines.append(Text(f"assumed: {a}", style="dim"))
    title = f"{step.location}  {statement_label(step.sql, 90)}"
    return Panel(Group(*lines), title=Text(title), title_align="left", expand=expand)


def render_explain(console: Console, plan: Plan, snapshot: Snapshot | None) -> None:
    """Print each statement's effects: the strongest lock per relation (JSON lists all).

    In a terminal a panel fills the width; piped (a file, a CI log) it is as wide as its
    content needs, up to the console's width, and long lines wrap inside it.
    """
    terminal = console.is_terminal
    for step in plan:
        console.print(_step_panel(step, snapshot, expand=terminal), soft_wrap=False)
    if plan.server_version is None:
        console.print(
            Text(
                "server version not given: modelled for PostgreSQL 18 (pass --pg-version)",
                style="dim",
            )
        )


def explain_json(plan: Plan, snapshot: Snapshot | None) -> dict[str, Any]:
    """The documented JSON form of `explain`."""
    out: list[dict[str, Any]] = []
    for step in plan:
        eff = step.effects
        out.append(
            {
                "sql": step.sql,
                "location": {
                    "path": step.location.path,
                    "line": step.location.line,
                    "column": step.location.column,
                },
                "statement": step.kind,
                "in_transaction": step.in_transaction,
                "transactional": eff.transactional,
                "locks": [
                    {
                        "relation": lk.relation,
                        "relkind": lk.relkind,
                        "mode": lk.mode.title,
                        "blocks_reads": lk.mode.blocks_reads,
                        "blocks_writes": lk.mode.blocks_writes,
                        "reason": lk.reason,
                    }
                    for lk in eff.locks
                ],
                "rewrites": list(eff.rewrites),
                "scans": list(eff.scans),
                "destroys": list(eff.destroys),
                "creates": list(eff.creates),
                "assumptions": list(eff.assumptions),
                "estimates": _estimates(eff.rewrites, eff.scans, snapshot),
            }
        )
    return {"server_version": plan.server_version, "statements": out}


def _estimates(
    rewrites: tuple[str, ...], scans: tuple[str, ...], snapshot: Snapshot | None
) -> dict[str, float]:
    if snapshot is None:
        return {}
    est: dict[str, float] = {}
    for rel, rewrite in [*((r, True) for r in rewrites), *((s, False) for s in scans)]:
        t = snapshot.table(rel)
        if t is not None:
            est[rel] = max(est.get(rel, 0.0), round(estimate_seconds(t, rewrite=rewrite), 3))
    return est
