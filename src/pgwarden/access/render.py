"""The audit for people (a table of roles x capabilities, then the findings with their
paths) and for CI (SARIF 2.1.0, GitHub workflow annotations)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgwarden.access.audit import AuditReport
from pgwarden.access.capabilities import Capability
from pgwarden.access.verdict import RULES, AuditFinding
from pgwarden.report import github
from pgwarden.report.markup import styled
from pgwarden.report.sarif import SRCROOT, sarif_log

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["github_annotations", "sarif", "text"]

# Table columns: heading -> capability kinds counted in it
_COLUMNS = {
    "super": ("superuser",),
    "attrs": ("createrole", "createdb", "bypassrls", "replication"),
    "owns": ("owner",),
    "writes": ("write", "write_all"),
    "CREATE": ("schema_create", "database_create"),
    "trig/FK": ("trigger", "references", "maintain"),
    "future": ("future_write",),
    "definer": ("definer",),  # SECURITY DEFINER routines that run with an owner's rights
}
_ATTR_SHORT = {"CREATEROLE": "CR", "CREATEDB": "DB", "BYPASSRLS": "RLS", "REPLICATION": "REPL"}
_COLOR = {"error": "red", "warning": "yellow", "note": "dim"}
SHOWN_PATHS = 4


def _cell(kinds: tuple[str, ...], caps: Sequence[Capability]) -> str:
    """Yes for SUPERUSER, the attributes' short names, else how many objects."""
    mine = [c for c in caps if c.kind in kinds]
    if kinds == ("superuser",):
        return "yes" if mine else ""
    if kinds[0] == "createrole":
        return ",".join(sorted({_ATTR_SHORT.get(c.privilege, c.privilege) for c in mine}))
    n = len({c.object for c in mine})
    return str(n) if n else ""


def text(report: AuditReport) -> list[RenderableType]:
    """Renderables for the terminal: the summary line, the table, the findings."""
    from rich.table import Table

    out: list[RenderableType] = []
    env = report.environment or "(no --env, not stamped)"
    prot = "protected" if report.protected else "not protected"
    out.append(
        styled(
            "[bold]audit of {}[/] (PostgreSQL {}) for {} ({}), connected as {}",
            report.database,
            report.server_version,
            env,
            prot,
            report.connected_as,
        )
    )
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("login role", no_wrap=True)
    table.add_column("class")
    for heading in _COLUMNS:
        table.add_column(heading, justify="right")
    table.add_column("verdict", no_wrap=True)
    for v in report.verdicts:
        worst = next(
            (s for s in ("error", "warning") if any(f.severity == s for f in v.findings)), None
        )
        verdict = (
            styled("[{}]{}[/]", _COLOR[worst], worst)
            if worst
            else styled("[green]ok[/]" if report.policy else "[dim]-[/]")
        )
        table.add_row(
            v.role,
            v.role_class,
            *(_cell(kinds, v.capabilities) for kinds in _COLUMNS.values()),
            verdict,
        )
    out.append(table)
    for f in report.findings:
        out.extend(finding_lines(f))
    out.append(
        styled(
            "{}: {}, {}, {}",
            _count(len(report.verdicts), "login role"),
            _count(report.count("error"), "error"),
            _count(report.count("warning"), "warning"),
            _count(report.count("note"), "note"),
        )
    )
    return out


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def finding_lines(f: AuditFinding) -> list[RenderableType]:
    color = _COLOR[f.severity]
    lines: list[RenderableType] = [
        styled("[" + color + "]{}[/] {} {}: {}", f.severity, f.code, f.name, f.message)
    ]
    for p in f.paths[:SHOWN_PATHS]:
        lines.append(styled("    [dim]why:[/] {}", p))
    if len(f.paths) > SHOWN_PATHS:
        more = _count(len(f.paths) - SHOWN_PATHS, "more path")
        lines.append(styled("    [dim]... {} (--format json lists them)[/]", more))
    if f.help:
        lines.append(styled("    [dim]help:[/] {}", f.help))
    return lines


def _level(severity: str) -> str:
    return {"error": "error", "warning": "warning"}.get(severity, "note")


def sarif(report: AuditReport, config_path: str | None) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one result per finding, located at the configuration file that
    declares the policy (code scanning needs a file), the role as a logical location."""
    where = Path(config_path or "pyproject.toml")
    if where.is_absolute():
        try:
            where = where.relative_to(Path.cwd())
        except ValueError:
            where = Path(where.name)
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": list(RULES).index(f.code),
            "level": _level(f.severity),
            "message": {
                "text": f"{f.message}. Why: {'; '.join(f.paths[:SHOWN_PATHS]) or '-'}. "
                f"Help: {f.help}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": where.as_posix(), "uriBaseId": SRCROOT},
                        "region": {"startLine": 1},
                    },
                    "logicalLocations": [
                        {
                            "name": f.role or report.database,
                            "kind": "role" if f.role else "database",
                        }
                    ],
                }
            ],
            "partialFingerprints": {
                "pgwardenAudit/v1": f"{report.database}/{f.code}/{f.role or '-'}"
            },
        }
        results.append(result)
    rules = [
        {
            "id": code,
            "name": name,
            "shortDescription": {"text": what},
            "helpUri": "https://github.com/pgwarden/pgwarden/blob/main/docs/audit.md",
        }
        for code, (name, what) in RULES.items()
    ]
    return sarif_log("pgwarden-audit", rules, results, base_uri=Path.cwd().as_uri() + "/")


def github_annotations(report: AuditReport) -> str:
    """One GitHub workflow command per finding (`::error title=...::message`)."""
    level = {"error": "error", "warning": "warning", "note": "notice"}
    lines = []
    for f in report.findings:
        why = "\n".join(f"why: {p}" for p in f.paths[:SHOWN_PATHS])
        body = f"{f.message}\n{why}\nhelp: {f.help}".replace("\n\n", "\n")
        lines.append(
            f"::{level[f.severity]} title={github.prop(f'{f.code} {f.name}')}::{github.data(body)}"
        )
    return "\n".join(lines) + ("\n" if lines else "")
