"""`manage.py pgwarden rehearse` runs the steps with the TimeZone Django sets.

`ALTER COLUMN ... TYPE timestamptz` from `timestamp` rewrites the table unless the
session's TimeZone is UTC; Django's `migrate` runs it in `connection.timezone_name`,
whatever the database's own default, and the rehearsal does the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("django")

from tests.contrib.test_django_timezone import PARIS, UTC, _manage, _project


def _rehearse(project: Path, dsn: str) -> dict[str, Any]:
    r = _manage(project, dsn, "migrate", "shop", "0001", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _manage(project, dsn, "pgwarden", "rehearse", "--format", "json")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _rewrites(doc: dict[str, Any]) -> list[str]:
    return [t for s in doc["steps"] if "ALTER TABLE" in s["sql"] for t in s["rewrites"]]


@pytest.mark.parametrize(
    ("tz", "database_tz", "rewritten"),
    [(PARIS, None, ["shop_event"]), (UTC, "Europe/Paris", [])],
    ids=["django-paris", "django-utc-database-paris"],
)
def test_rehearse_runs_with_djangos_timezone(
    db: str, tmp_path: Path, tz: str, database_tz: str | None, rewritten: list[str]
) -> None:
    if database_tz is not None:
        with psycopg.connect(db, autocommit=True) as conn:
            name = conn.execute("SELECT current_database()").fetchone()
            assert name is not None
            conn.execute(f"ALTER DATABASE {name[0]} SET TimeZone = '{database_tz}'")
    doc = _rehearse(_project(tmp_path, tz), db)
    # Django's Paris: rewritten, as `migrate` does it (was: in place, the copy ran in UTC)
    assert _rewrites(doc) == rewritten, doc["steps"]
    said = [n for n in doc["notes"] if "TimeZone 'Europe/Paris'" in n]
    assert bool(said) is bool(rewritten), doc["notes"]
