"""Every rule is registered, documented in the fixed sections, and its docs are true."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import pgwarden.rules as rules_pkg
from pgwarden.analysis.context import Snapshot, load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.lint.engine import lint_plan
from pgwarden.plan import SourceText, build_plan
from pgwarden.rules import ALL_RULES, Rule
from pgwarden.rules.base import DOC_SECTIONS
from pgwarden.rules.docs import render_index, render_page, render_rule

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"
CASES = Path(__file__).resolve().parent / "cases"


def _sql_block(section: str) -> str:
    m = re.search(r"```sql\n(.*?)```", section, re.S)
    assert m, "section has no ```sql block"
    return m.group(1)


def _codes(sql: str, snapshot: Snapshot | None = None) -> list[str]:
    catalog = snapshot.catalog if snapshot else None
    plan = build_plan([(SourceText("doc.sql", sql), parse(sql, "doc.sql"))], catalog=catalog)
    return [f.code for f in lint_plan(plan, snapshot=snapshot).findings]


def test_every_rule_module_is_registered():
    modules = {
        m.name for m in pkgutil.iter_modules(rules_pkg.__path__) if re.match(r"pw\d{3}_", m.name)
    }
    registered = {r.check.__module__.rsplit(".", 1)[-1] for r in ALL_RULES}
    assert modules == registered
    for name in modules:
        mod = importlib.import_module(f"pgwarden.rules.{name}")
        assert name.startswith(mod.RULE.code.lower() + "_"), name
        assert name.endswith(mod.RULE.name.replace("-", "_")), name


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_doc_has_every_section(rule: Rule):
    assert list(rule.sections()) == list(DOC_SECTIONS)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_example_is_flagged_and_use_instead_is_clean(rule: Rule):
    # Without stats every table is assumed large; some hazards show only with stats
    # (the demo snapshot: 5M invoices under traffic).
    sections = rule.sections()
    stats = load_snapshot(CASES / "demo-stats.json")
    example, instead = _sql_block(sections["Example"]), _sql_block(sections["Use instead"])
    assert rule.code in _codes(example) + _codes(example, stats)
    assert rule.code not in _codes(instead) + _codes(instead, stats)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_has_cases(rule: Rule):
    assert list(CASES.glob(f"{rule.code}/flags_*.sql")), f"no flags_*.sql case for {rule.code}"
    assert list(CASES.glob(f"{rule.code}/ok_*.sql")), f"no ok_*.sql case for {rule.code}"


def test_generated_docs_are_fresh():
    stale = [
        r.code
        for r in ALL_RULES
        if not (DOCS / f"{r.code}.md").exists()
        or (DOCS / f"{r.code}.md").read_text() != render_rule(r)
    ]
    regenerate = "run .venv/bin/python scripts/gen_docs"
    assert not stale, f"docs/rules out of date for {stale}: {regenerate}"
    assert (DOCS / "README.md").read_text() == render_index(), regenerate
    from pgwarden.lint import preflight

    page = render_page(preflight.CODE, preflight.NAME, preflight.__doc__ or "")
    assert (DOCS / "PW401.md").read_text() == page, regenerate
