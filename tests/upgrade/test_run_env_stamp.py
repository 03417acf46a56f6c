"""`upgrade run` checks OLD's stamp against --env as `pgwarden apply` does: an OLD that
holds data but was never stamped by pgwarden is refused before anything is written,
until it is adopted once with --restamp."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database
from tests.fixtures.run import pgwarden


def _schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgwarden%'")
        return {str(r[0]) for r in rows}


def test_an_unstamped_old_holding_data_is_refused_until_adopted(
    db: str, pg_cluster: Cluster, tmp_path: Path
) -> None:
    new = new_database(pg_cluster)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        c.execute("INSERT INTO orders VALUES (1)")
    args = ("upgrade", "run", "--database-url", db, "--target-url", new, "--env", "dev", "--yes")

    refused = pgwarden(*args, cwd=tmp_path)
    said = refused.stdout + refused.stderr
    assert refused.returncode == 1, said
    assert "holds 1 table with data but no pgwarden stamp" in refused.stderr, said
    assert "--restamp --env dev" in refused.stderr, said
    assert "Traceback" not in said
    assert _schemas(db) == set() and _schemas(new) == set()  # nothing written on either

    adopted = pgwarden(*args, "--restamp", cwd=tmp_path)
    said = adopted.stdout + adopted.stderr
    assert "no pgwarden stamp" not in said, said
    with psycopg.connect(db) as c:
        row = c.execute("SELECT environment, protected FROM pgwarden.target").fetchone()
    assert row == ("dev", True), said  # undeclared: protected (as apply --restamp records it)
    # the run went on to its guardrails: NEW is not newer than OLD (same server)
    assert adopted.returncode != 0 and "newer" in adopted.stderr, said

    again = pgwarden(*args, cwd=tmp_path)  # adopted: the stamp now decides, no --restamp needed
    said = again.stdout + again.stderr
    assert "no pgwarden stamp" not in said and "newer" in again.stderr, said
    staging = pgwarden(*args[:-2], "staging", "--yes", cwd=tmp_path)
    assert staging.returncode == 1 and "is stamped 'dev'" in staging.stderr, staging.stderr
    assert "refusing to apply" not in staging.stderr, staging.stderr  # it is an upgrade
