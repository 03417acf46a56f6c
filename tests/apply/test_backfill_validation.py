"""`backfill` checks its --set/--where (one SET list and one condition, naming columns of
the table) before any progress output, any job record and any batch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.identity import stamp_database
from tests.apply.conftest import cli, scalar


@pytest.fixture
def ledger(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, bal integer NOT NULL DEFAULT 0)")
        c.execute("INSERT INTO ledger (id) SELECT g FROM generate_series(1, 100) g")
        # stamped, as backfill (like apply) refuses an unstamped database holding data
        stamp_database(c, "staging", protected=False, by="tests")
    return db


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--set", "bal = 1; DROP TABLE ledger"), "one SET list and one condition"),
        # a WHERE, FROM or RETURNING smuggled into --set (or --where) is not a SET list
        (("--set", "bal = 1 WHERE 1 = 1"), "one SET list and one condition"),
        (("--set", "bal = 1 FROM ledger l2"), "one SET list and one condition"),
        (("--set", "bal = 1", "--where", "true RETURNING id"), "one SET list and one condition"),
        (("--set", "balance = 1"), 'column "balance" of relation "ledger" does not exist'),
        (("--set", "bal = 1", "--where", "kind = 'x'"), 'column "kind" does not exist'),
    ],
)
def test_a_bad_set_or_where_is_refused_before_any_progress(
    ledger: str, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    argv = cli(
        "backfill",
        "--database-url",
        ledger,
        "--env",
        "staging",
        "--yes",
        "--table",
        "ledger",
        *args,
    )
    proc = subprocess.run(
        argv, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "pgwarden: error:" in proc.stderr and needle in proc.stderr, proc.stderr
    assert "backfill ledger" not in proc.stderr and "%" not in proc.stderr
    assert scalar(ledger, "SELECT to_regclass('pgwarden.backfills')") is None
    assert scalar(ledger, "SELECT count(*) FROM ledger WHERE bal <> 0") == 0
