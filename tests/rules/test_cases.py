"""Rule cases: tests/rules/cases/<CODE>/flags_*.sql with .expected beside, ok_*.sql clean.

An `.expected` file is exactly what `pgwarden lint` prints for that rule's
findings (no colour, 100 columns). Regenerate with `pytest --update-snapshots`.
A case may start with `-- stats: <file>` naming a snapshot in tests/rules/cases/.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from pgwarden.analysis.context import load_snapshot
from pgwarden.commands import Context, lint
from pgwarden.lint.engine import LintResult
from pgwarden.report.lint_text import render_lint

CASES = Path(__file__).resolve().parent / "cases"
ALL = sorted(CASES.glob("PW*/*.sql"))


def _run(path: Path) -> tuple[str, LintResult]:
    """Lint one case by its path relative to CASES (output independent of the checkout)."""
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    snapshot = None
    if first.startswith("-- stats: "):
        snapshot = load_snapshot(CASES / first.removeprefix("-- stats: ").strip())
    ctx = Context(snapshot, snapshot.catalog if snapshot else None, 15, "snapshot")
    plan, result = lint([path.relative_to(CASES)], context=ctx)
    code = path.parent.name
    mine = LintResult(
        tuple(f for f in result.findings if f.code == code), result.suppressed, result.assumptions
    )
    buf = io.StringIO()
    render_lint(Console(file=buf, width=100, color_system=None, highlight=False), plan, mine)
    return buf.getvalue(), mine


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_case(path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(CASES)
    text, result = _run(path)
    if path.name.startswith("ok_"):
        assert not result.findings, text
        return
    assert result.findings, f"{path.name} should flag {path.parent.name}"
    expected = path.with_suffix(".expected")
    if request.config.getoption("--update-snapshots"):
        expected.write_text(text)
    assert expected.exists(), f"{expected.name} is missing: run `pytest --update-snapshots`"
    assert text == expected.read_text()
