"""`lint --fix` of a file it already fixed adds nothing that is already there.

A fixed file that gains a statement with a fix of its own (or keeps another
finding with one) is fixed again: the drops of what a cancelled REINDEX ...
CONCURRENTLY left, the TOAST-copy cleanup block and the block finishing a
pending DETACH were written a second time before their statement (each fix
added another set), and the "Every lock wait is bounded" header became the
unbounded one although the file's SET lock_timeout stayed.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import CONCURRENT_WAIT_MS, fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
ADDED = "CREATE INDEX invoices_status_idx2 ON invoices (status);\n"
ADDED_FIXED = (
    "DO $pgwarden$ BEGIN\n"
    "  IF EXISTS (SELECT FROM pg_index\n"
    "             WHERE indexrelid = to_regclass('invoices_status_idx2')\n"
    "               AND NOT indisvalid)\n"
    "     AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index\n"
    "                     WHERE index_relid = to_regclass('invoices_status_idx2')) THEN\n"
    "    ALTER INDEX invoices_status_idx2 RENAME TO invoices_status_idx2_pgwarden_invalid;\n"
    "  END IF;\n"
    "END $pgwarden$;\n"
    "DROP INDEX CONCURRENTLY IF EXISTS invoices_status_idx2_pgwarden_invalid;\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_status_idx2 ON invoices (status);\n"
)


def _fix(path: Path, with_catalog: bool) -> str:
    snap = load_snapshot(CASES / "demo-stats.json") if with_catalog else None
    ctx = Context(snap, snap.catalog if snap else None, 18, "snapshot")
    plan, result = lint([path], context=ctx)
    write_fixes(fix_plan(plan, result, snap))
    return path.read_text()


@pytest.mark.parametrize(
    ("original", "with_catalog"),
    [
        ("REINDEX TABLE invoices;\n", True),
        ("REINDEX TABLE invoices;\n", False),
        ("REINDEX INDEX invoices_payment_account_id_idx;\n", False),
        ("ALTER TABLE events DETACH PARTITION events_2023;\n", True),
        (
            "REINDEX TABLE invoices;\n"
            "ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint;\n",
            False,
        ),
        # Header lines about statements the first fix wrapped in a block or named: the
        # fix of the fixed file keeps them.
        (
            "ALTER TABLE invoices ALTER COLUMN amount_cents TYPE numeric(12,2)\n"
            "    USING amount_cents / 100.0;\n",
            False,
        ),
        ("ALTER TABLE invoices ADD CHECK (amount_cents > 0);\n", False),
        (
            "CREATE INDEX invoices_status_idx ON invoices (status);\n"
            "ALTER TABLE invoices RENAME COLUMN status TO state;\n",
            False,
        ),
        (
            "CREATE SCHEMA crm;\nCREATE TYPE tier AS ENUM ('free');\n"
            "ALTER TYPE tier SET SCHEMA crm;\n"
            "CREATE INDEX invoices_status_idx ON invoices (status);\n",
            False,
        ),
    ],
    ids=[
        "reindex-table-catalog",
        "reindex-table",
        "reindex-index",
        "detach",
        "another-finding",
        "convert-using",
        "unnamed-check",
        "rename",
        "set-schema",
    ],
)
def test_a_fixed_file_fixed_again_gains_only_the_new_fix(
    tmp_path: Path, original: str, with_catalog: bool
) -> None:
    path = tmp_path / "001.sql"
    path.write_text(original)
    once = _fix(path, with_catalog)
    assert once != original
    path.write_text(once + ADDED)
    twice = _fix(path, with_catalog)
    # The statements, comments and header lines of the fixed file, once each, then the
    # added statement's fix; the session lock_timeout is sized anew for the added
    # statement (its table may bear less), one SET at the top.
    assert _statements(twice) == _statements(once) + _statements(ADDED_FIXED), twice
    assert _comments(twice) == _comments(once), twice
    bounded = "\n-- Every lock wait is bounded; retry the file if a statement times out.\n"
    assert (bounded in twice) is ("\nSET lock_timeout" in twice), twice
    # ... and around each CREATE/DROP INDEX CONCURRENTLY, its longer wait and back
    sets = [s.text for s in parse(twice) if s.text.startswith("SET lock_timeout")]
    assert sets[0] == parse(twice)[0].text, twice
    waits = f"SET lock_timeout = '{CONCURRENT_WAIT_MS}ms'"
    assert all(s in (sets[0], waits) for s in sets), twice
    assert _fix(path, with_catalog) == twice  # nothing left to fix: unchanged


def _comments(text: str) -> list[str]:
    """Comment lines but the header's about lock waits (bounded or not: checked apart; the
    concurrent builds' longer wait: said when the added statement brings one)."""
    return [
        ln
        for ln in text.splitlines()
        if ln.startswith("--") and "retry the" not in ln and "waits up to" not in ln
    ]


def _statements(text: str) -> list[str]:
    """The statements but a session SET lock_timeout."""
    return [s.text for s in parse(text) if not s.text.startswith("SET lock_timeout")]


def test_the_refixed_file_runs_twice_and_leaves_no_invalid_index(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    path = tmp_path / "001.sql"
    path.write_text("REINDEX TABLE invoices;\n")
    path.write_text(_fix(path, True) + ADDED)
    stmts = [s.text for s in parse(_fix(path, True))]
    assert sum(s.startswith("DO $pgwarden$ DECLARE") for s in stmts) == 1, stmts
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=200, accounts_rows=20)
        for _ in range(2):
            for q in stmts:
                c.execute(q.encode())
        invalid = c.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
        assert invalid == (0,)
        assert c.execute("SELECT to_regclass('invoices_status_idx2')").fetchone() != (None,)
