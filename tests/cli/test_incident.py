"""The Sendcloud migration, through the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from pgwarden.demo import create_sample_schema

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"
SAFE = ROOT / "examples" / "safe" / "001_recreate_invoice_fk_safe.sql"
STATS = ROOT / "tests" / "rules" / "cases" / "demo-stats.json"


def pgwarden(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PGWARDEN_DATABASE_URL", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "COLUMNS": "200"},
    )


def _locks(stmt: dict[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    order = [
        "ACCESS SHARE",
        "ROW SHARE",
        "ROW EXCLUSIVE",
        "SHARE UPDATE EXCLUSIVE",
        "SHARE",
        "SHARE ROW EXCLUSIVE",
        "EXCLUSIVE",
        "ACCESS EXCLUSIVE",
    ]
    for lk in stmt["locks"]:  # type: ignore[attr-defined]
        rel, mode = lk["relation"], lk["mode"]
        if rel not in out or order.index(mode) > order.index(out[rel]):
            out[rel] = mode
    return out


def test_explain_incident_against_live_schema(db: str):
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2000, accounts_rows=100)
    r = pgwarden("explain", INCIDENT.read_text(), "--database-url", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    drop, add = json.loads(r.stdout)["statements"]
    assert _locks(drop)["invoices"] == "ACCESS EXCLUSIVE"
    assert _locks(drop)["payment_accounts"] == "ACCESS EXCLUSIVE"  # known from the catalog
    assert _locks(add)["invoices"] == "SHARE ROW EXCLUSIVE"
    assert _locks(add)["payment_accounts"] == "SHARE ROW EXCLUSIVE"
    assert "invoices" in add["scans"]
    assert "invoices" in add["estimates"]


def test_explain_incident_without_schema_states_assumption():
    r = pgwarden("explain", INCIDENT.read_text(), "--format", "json")
    assert r.returncode == 0, r.stderr
    drop = json.loads(r.stdout)["statements"][0]
    assert drop["assumptions"], "dropping an FK without a catalog must say what it assumed"


def test_explain_text_names_tables_modes_and_scan():
    r = pgwarden("explain", INCIDENT.read_text(), "--stats", str(STATS))
    assert r.returncode == 0, r.stderr
    for needle in (
        "invoices",
        "payment_accounts",
        "ACCESS EXCLUSIVE",
        "SHARE ROW EXCLUSIVE",
        "scans invoices under lock",
        "estimated",
    ):
        assert needle in r.stdout, (needle, r.stdout)


def test_lint_incident_with_stats_is_an_error_naming_everything():
    r = pgwarden("lint", str(INCIDENT), "--stats", str(STATS), "--format", "json")
    assert r.returncode == 1, r.stderr
    findings = json.loads(r.stdout)["findings"]
    fk = [f for f in findings if f["code"] == "PW102"]
    assert len(fk) == 1 and fk[0]["severity"] == "error"
    msg = fk[0]["message"]
    for needle in (
        "invoices",
        "payment_accounts",
        "ACCESS EXCLUSIVE",
        "scanning all of invoices",
        "s estimated",
    ):
        assert needle in msg, (needle, msg)
    assert "NOT VALID" in fk[0]["fix"] and "VALIDATE CONSTRAINT" in fk[0]["fix"]


def test_safe_form_has_no_errors():
    r = pgwarden("lint", str(SAFE), "--stats", str(STATS), "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["summary"]["errors"] == 0
