"""The engine runs a rule on an ALTER TABLE only when it has a sub-command the rule
declares (`Rule.subtypes`). Running every ALTER TABLE rule on every ALTER TABLE must find
exactly the same: a declaration that leaves out a sub-command the rule reports on would
hide its findings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pgwarden.analysis.context import load_snapshot
from pgwarden.commands import Context, lint
from pgwarden.lint.engine import lint_plan
from pgwarden.rules import ALL_RULES

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
UNDISPATCHED = tuple(dataclasses.replace(r, subtypes=None) for r in ALL_RULES)


def _context(path: Path) -> Context:
    first = path.read_text().splitlines()[:1]
    if first and first[0].startswith("-- stats: "):
        snap = load_snapshot(CASES / first[0].removeprefix("-- stats: ").strip())
        return Context(snap, snap.catalog, 15, "snapshot")
    return Context(None, None, 15, "none")


def test_declared_subtypes_cover_every_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)
    files = sorted(CASES.glob("PW*/*.sql"))
    assert any(r.subtypes for r in ALL_RULES)
    checked = 0
    for path in [*files, ROOT / "bench" / "verdict_corpus.sql"]:
        ctx = _context(path)
        plan, result = lint([path], context=ctx)
        every = lint_plan(plan, snapshot=ctx.snapshot, rules=UNDISPATCHED)
        assert result.findings == every.findings, path.name
        checked += len(every.findings)
    assert checked > 500  # the cases exercise the rules
