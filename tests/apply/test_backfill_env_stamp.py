"""`backfill` checks the database's stamp against --env as `pgwarden apply` does: a
database that holds data but was never stamped by pgwarden is refused before anything is
written, whatever --env says, until it is adopted once with --restamp."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.fixtures.run import pgwarden


@pytest.fixture
def ledger(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, bal integer NOT NULL DEFAULT 0)")
        c.execute("INSERT INTO ledger (id) SELECT g FROM generate_series(1, 100) g")
    return db


def _state(dsn: str) -> tuple[set[str], int]:
    """pgwarden's schemas and the rows the backfill changed."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgwarden%'")
        schemas = {str(r[0]) for r in rows}
        changed = c.execute("SELECT count(*) FROM ledger WHERE bal <> 0").fetchone()
    assert changed is not None
    return schemas, int(str(changed[0]))


def test_an_unstamped_database_holding_data_is_refused_until_adopted(
    ledger: str, tmp_path: Path
) -> None:
    args = (
        *("backfill", "--database-url", ledger, "--table", "ledger", "--set", "bal = 1"),
        *("--no-health-gate", "--yes", "--env"),
    )

    refused = pgwarden(*args, "staging", cwd=tmp_path)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert "holds 1 table with data but no pgwarden stamp" in refused.stderr, said
    assert "--restamp --env staging" in refused.stderr, said
    assert "Traceback" not in said and "backfill ledger" not in said
    assert _state(ledger) == (set(), 0)  # nothing written: no stamp, no job row, no batch

    adopted = pgwarden(*args, "staging", "--restamp", cwd=tmp_path)
    said = adopted.stdout + adopted.stderr
    assert adopted.returncode == 0, said
    assert "backfill ledger: 100 rows" in adopted.stdout, said
    with psycopg.connect(ledger) as c:
        row = c.execute("SELECT environment, protected FROM pgwarden.target").fetchone()
    assert row == ("staging", True), said  # undeclared: protected, as apply --restamp records

    again = pgwarden(*args, "staging", "--again", cwd=tmp_path)  # the stamp decides now
    assert again.returncode == 0, again.stdout + again.stderr
    production = pgwarden(*args, "production", cwd=tmp_path)
    assert production.returncode == 1, production.stderr
    assert "is stamped 'staging'" in production.stderr, production.stderr
    assert "refusing to apply" not in production.stderr  # a backfill applies no migration
