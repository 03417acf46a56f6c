"""Lint findings as the documented, stable JSON contract (docs/json-output.md)."""

from __future__ import annotations

from typing import Any

from pgwarden.findings import Severity
from pgwarden.lint.engine import LintResult
from pgwarden.lint.ignore_sources import suppressed_summary
from pgwarden.plan import Plan

__all__ = ["lint_json"]


def lint_json(plan: Plan, result: LintResult) -> dict[str, Any]:
    """`{"findings": [...], "summary": {...}}`."""
    return {
        "findings": [
            {
                "code": f.code,
                "name": f.name,
                "severity": f.severity.value,
                "message": f.message,
                "help": f.help,
                "location": {
                    "path": f.location.path,
                    "line": f.location.line,
                    "column": f.location.column,
                },
                "fix": f.fix.sql if f.fix else None,
                "fix_mechanical": f.fix.mechanical if f.fix else None,
            }
            for f in result.findings
        ],
        "summary": {
            "files": len(plan.sources),
            "statements": len(plan.steps),
            "errors": result.count(Severity.ERROR),
            "warnings": result.count(Severity.WARNING),
            "notes": result.count(Severity.NOTE),
            "suppressed": len(result.suppressed),
            "suppressed_by": [
                {"count": g.count, "by": g.by, "reason": g.reason}
                for g in suppressed_summary(result)
            ],
            "assumptions": list(result.assumptions),
        },
    }
