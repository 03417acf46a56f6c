"""Fixes are data: every rule's fix is placed by its own declaration, and `--fix`
applies every fix the rule calls mechanical (and only those)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import Snapshot, load_snapshot
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.findings import Finding, Placement
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.lint.rewrite import rewrite_plan, statement_changes
from pgwarden.plan import Plan
from pgwarden.rules import ALL_RULES

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
FLAGGED = sorted(CASES.glob("PW*/flags_*.sql"))


def _lint_case(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Plan, Snapshot | None, list[Finding]]:
    monkeypatch.chdir(CASES)
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    snapshot = None
    if first.startswith("-- stats: "):
        snapshot = load_snapshot(CASES / first.removeprefix("-- stats: ").strip())
    ctx = Context(snapshot, snapshot.catalog if snapshot else None, 15, "snapshot")
    plan, result = lint([path.relative_to(CASES)], context=ctx)
    return plan, snapshot, [f for f in result.findings if f.fix is not None]


@pytest.mark.parametrize("path", FLAGGED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fix_is_placed_consistently_and_applied_when_mechanical(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, snapshot, fixed = _lint_case(path, monkeypatch)
    if not fixed:
        pytest.skip("no fix in this case")
    _, rewrites = rewrite_plan(plan, snapshot=snapshot)
    replaced = {r.step for r in rewrites}
    for f in fixed:
        assert f.fix is not None and f.step is not None
        step = plan.steps[f.step]
        for st in f.fix.statements:
            stmts = parse(st.sql)
            assert len(stmts) == 1, st.sql  # one statement each
            if st.placement is Placement.IN_PLACE and stmts[0].text != step.sql:
                assert analyse(stmts[0].tree).transactional, st.sql
        if not f.fix.mechanical:
            assert f.fix.why_not, f.code
            continue
        if statement_changes(f.fix, step):
            assert f.step in replaced, f"{f.code}: mechanical fix not applied by the rewrite"


def test_rules_whose_docs_call_the_fix_safe_produce_mechanical_fixes() -> None:
    """A rule whose *Fix safety* starts with "Safe:" has no advice-only fixes; a conditional
    one says when `--fix` leaves it."""
    for rule in ALL_RULES:
        safety = rule.sections().get("Fix safety", "")
        source = Path(__import__(rule.check.__module__, fromlist=["x"]).__file__ or "").read_text()
        if "mechanical=" in source:
            assert "--fix" in safety, f"{rule.code}: say when --fix leaves the fix"
        elif "Fix(" in source:
            assert re.match(r"Safe\b", safety), f"{rule.code}: a mechanical fix must be called safe"


SQL = """\
BEGIN;
REINDEX INDEX invoices_status_idx;
DROP INDEX invoices_created_idx;
ALTER TABLE events DETACH PARTITION events_2023;
COMMIT;
"""

SCHEMA = """\
CREATE TABLE invoices (id bigint PRIMARY KEY, status text, created_at timestamptz);
CREATE INDEX invoices_status_idx ON invoices (status);
CREATE INDEX invoices_created_idx ON invoices (created_at);
INSERT INTO invoices SELECT g, 'open', now() FROM generate_series(1, 1000) g;
CREATE TABLE events (at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
"""


def test_concurrently_fixes_once_skipped_now_run_on_a_real_server(tmp_path: Path, db: str) -> None:
    """PW111, PW113 and PW207: their fixes were shown but `--fix` skipped them."""
    f = tmp_path / "001.sql"
    f.write_text(SQL)
    plan, result = lint([f], context=Context(None, None, 15, "none"))
    codes = {x.code for x in result.findings}
    assert {"PW111", "PW113", "PW207"} <= codes
    fixes = fix_plan(plan, result)
    assert {x.code for x in fixes[0].fixed} >= {"PW111", "PW113", "PW207"}
    write_fixes(fixes)
    text = f.read_text()
    assert "REINDEX INDEX CONCURRENTLY" in text and "DROP INDEX CONCURRENTLY" in text
    assert "DETACH PARTITION events_2023 CONCURRENTLY" in text
    _, after = lint([f], context=Context(None, None, 15, "none"))
    assert not {x.code for x in after.findings} & {"PW111", "PW113", "PW207"}
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        for stmt in parse(text):
            c.execute(stmt.text)  # autocommit: CONCURRENTLY refuses a transaction block
        left = c.execute(
            "SELECT count(*) FROM pg_class WHERE relname = 'invoices_created_idx'"
        ).fetchone()
        parts = c.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
        ).fetchone()
    assert left == (0,)
    assert parts == (0,)
