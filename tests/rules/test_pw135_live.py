"""PW135 against the server: every default its rule cases flag is rejected, and the
ok case's defaults are accepted (15-18)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from tests.fixtures.pg import new_database

from pgwarden.analysis.parse import parse
from pgwarden.pg.cluster import Cluster

CASES = Path(__file__).parent / "cases" / "PW135"
SETUP = "CREATE TABLE safekeepers (id int, mode text, created timestamptz)"


def _statements(name: str) -> list[str]:
    return [s.text for s in parse((CASES / name).read_text()) if "SET lock_timeout" not in s.text]


def test_flagged_defaults_fail_and_the_others_run(pg_any: Cluster) -> None:
    with psycopg.connect(new_database(pg_any), autocommit=True) as conn:
        for sql in _statements("flags_double_quoted_string_defaults.sql"):
            conn.execute("DROP TABLE IF EXISTS safekeepers, jobs")
            conn.execute(SETUP)
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="column reference"):
                conn.execute(sql.encode())
        conn.execute("DROP TABLE IF EXISTS safekeepers, jobs")
        conn.execute(SETUP)
        for sql in _statements("ok_constants_functions_and_generated_columns.sql"):
            conn.execute(sql.encode())
