"""Lint findings as a GitLab Code Quality report (the documented JSON array).

Each finding: description, check_name, fingerprint, severity (error: critical,
warning: major, note: minor), location.path (relative to the working
directory, as GitLab maps it onto the repository) and location.lines.begin.
The fingerprint hashes the rule, the path and the statement's text (not its
line), so a finding keeps its identity when lines above it move.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from pgwarden.findings import Severity
from pgwarden.lint.engine import LintResult
from pgwarden.plan import Plan
from pgwarden.report.lint_docs import rule_doc_url

__all__ = ["gitlab_code_quality"]

_SEVERITY = {Severity.ERROR: "critical", Severity.WARNING: "major", Severity.NOTE: "minor"}


def _path(path: str, root: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


def gitlab_code_quality(
    plan: Plan, result: LintResult, *, root: str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """The Code Quality report of `result`; paths relative to `root` (default: cwd)."""
    base = Path(root if root is not None else os.getcwd()).resolve()
    sql = {s.index: " ".join(s.sql.split()) for s in plan.steps}
    seen: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for f in result.findings:
        path = _path(f.location.path, base)
        key = "\0".join((f.code, path, sql.get(f.step, "") if f.step is not None else f.message))
        nth = seen[key] = seen.get(key, -1) + 1  # the same statement twice in one file
        out.append(
            {
                "description": f"{f.code} {f.name}: {f.message}. Help: {f.help}",
                "check_name": f.code,
                "fingerprint": hashlib.sha256(f"{key}\0{nth}".encode()).hexdigest(),
                "severity": _SEVERITY[f.severity],
                "location": {"path": path, "lines": {"begin": f.location.line}},
                "categories": ["Bug Risk"],
                "content": {"body": f"{f.help}\n\n{rule_doc_url(f.code)}"},
            }
        )
    return out
