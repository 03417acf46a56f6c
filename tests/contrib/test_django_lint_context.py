"""#14.7: `manage.py pgwarden lint --unapplied` reads the configured database's catalog and
statistics by default (read-only), says which database it read, and `--sql-only` lints
from the SQL alone (tests/contrib/django_multi, alpha_author has 50 rows)."""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest

from tests.contrib.test_django_upgrades import manage, released

pytest.importorskip("django")


def index_finding(out: str) -> dict[str, Any]:
    doc = json.loads(out)
    (found,) = [
        f
        for f in doc["findings"]
        if f["code"] == "PW101" and f["location"]["path"].endswith("0005_author_email_idx.py")
    ]
    return dict(found)


def test_lint_reads_the_database_by_default_and_sql_only_does_not(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    released(db, conn)
    dbname = conn.info.dbname
    default = manage(db, "pgwarden", "lint", "--unapplied", "--format", "json")
    assert default.returncode in (0, 1), default.stderr
    assert f"read from database 'default' (dbname={dbname}" in default.stderr
    assert "password" not in default.stderr
    # the largest table is small: CI's copy is not production, the note says what to do
    assert re.search(r"its largest table is \S+ with \d+ rows", default.stderr)
    assert "lint with --stats and a snapshot of production, or with --sql-only" in (default.stderr)
    # a 50-row table: the index build is brief, not an error
    assert index_finding(default.stdout)["severity"] != "error"

    alone = manage(db, "pgwarden", "lint", "--unapplied", "--format", "json", "--sql-only")
    assert alone.returncode == 1, alone.stderr
    assert "from the SQL alone" in alone.stderr and "read from database" not in alone.stderr
    assert index_finding(alone.stdout)["severity"] == "error"

    both = manage(db, "pgwarden", "lint", "--unapplied", "--sql-only", "--live-stats")
    assert both.returncode == 2 and "--sql-only reads no statistics" in both.stderr
