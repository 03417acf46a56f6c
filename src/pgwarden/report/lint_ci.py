"""Lint findings for CI: SARIF 2.1.0 (code scanning) and GitHub workflow annotations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from pgwarden.findings import Severity
from pgwarden.lint import preflight
from pgwarden.lint.engine import IGNORE_WITHOUT_REASON, SYNTAX_ERROR, LintResult
from pgwarden.plan import Plan
from pgwarden.report import github
from pgwarden.report.lint_docs import rule_doc_url
from pgwarden.report.sarif import SRCROOT, sarif_log
from pgwarden.rules import ALL_RULES

__all__ = ["CI_FORMATS", "ci_report", "github_annotations", "sarif"]

CI_FORMATS = ("sarif", "github", "gitlab")

_GH_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def _artifact(path: str, root: Path) -> dict[str, str]:
    """A SARIF artifactLocation: a relative URI against %SRCROOT% (the working
    directory), which code scanning maps onto the repository, or a file:// URI."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(root)
        except ValueError:
            return {"uri": p.as_uri()}
    return {"uri": quote(p.as_posix()), "uriBaseId": SRCROOT}


def sarif(result: LintResult, *, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; paths are relative to `root` (default: cwd)."""
    base = Path(root if root is not None else os.getcwd()).resolve()
    rules = [
        {
            "id": r.code,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.doc.strip().splitlines()[0]},
            "help": {"text": r.doc.strip(), "markdown": r.doc.strip()},
            "helpUri": rule_doc_url(r.code),
            # PW3xx (schema design) only ever say a note; the others reach errors
            "defaultConfiguration": {"level": "note" if r.code.startswith("PW3") else "error"},
        }
        for r in ALL_RULES
    ]
    rules.append(
        {
            "id": preflight.CODE,
            "name": preflight.NAME,
            "shortDescription": {"text": "existing rows would make the migration fail"},
            "help": {"text": (preflight.__doc__ or "").strip()},
            "helpUri": rule_doc_url(preflight.CODE),
            "defaultConfiguration": {"level": "error"},
        }
    )
    rules.append(
        {
            "id": IGNORE_WITHOUT_REASON,
            "name": "ignore-without-reason",
            "shortDescription": {"text": "an inline ignore without a reason suppresses nothing"},
            "defaultConfiguration": {"level": "error"},
        }
    )
    rules.append(
        {
            "id": SYNTAX_ERROR,
            "name": "syntax-error",
            "shortDescription": {"text": "the SQL is not valid: nothing was linted"},
            "defaultConfiguration": {"level": "error"},
        }
    )
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": f.severity.value,
            "message": {"text": f"{f.message}. Help: {f.help}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact(f.location.path, base),
                        "region": {"startLine": f.location.line, "startColumn": f.location.column},
                    }
                }
            ],
        }
        for f in result.findings
    ]
    return sarif_log(
        "pgwarden",
        rules,
        results,
        base_uri=base.as_uri() + "/",
        columnKind="unicodeCodePoints",
    )


def github_annotations(result: LintResult) -> str:
    """One `::error file=...,line=...,col=...,title=...::message` line per finding."""
    lines = []
    for f in result.findings:
        props = (
            f"file={github.prop(f.location.path)},line={f.location.line},col={f.location.column},"
            f"title={github.prop(f'{f.code} {f.name}')}"
        )
        text = github.data(f"{f.message}. Help: {f.help}")
        lines.append(f"::{_GH_LEVEL[f.severity]} {props}::{text}")
    return "\n".join(lines) + ("\n" if lines else "")


def ci_report(fmt: str, plan: Plan, result: LintResult) -> str:
    """The text of `fmt` (sarif, github, gitlab) for stdout: one place for the CLI and Django."""
    if fmt == "github":
        return github_annotations(result)
    if fmt == "sarif":
        doc: Any = sarif(result)
    elif fmt == "gitlab":
        from pgwarden.report.lint_gitlab import gitlab_code_quality

        doc = gitlab_code_quality(plan, result)
    else:
        raise ValueError(f"not a CI format: {fmt}")
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
