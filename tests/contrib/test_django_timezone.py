"""The session TimeZone Django sets is the one `manage.py pgwarden migrate` and lint use.

`ALTER COLUMN ... TYPE timestamptz` from `timestamp` is done in place only when the
session's TimeZone is UTC. Django sets TimeZone on every connection it opens
(`connection.timezone_name`); pgwarden's guarded executor opens its own connections, so
they start with the same TimeZone, and lint grades the change with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.django_site import project_env, write_project
from tests.fixtures.pgbouncer import needs_pgbouncer, pgbouncer

pytest.importorskip("django")

FIELDS = """
from django.db import models


class NaiveDateTimeField(models.DateTimeField):
    def db_type(self, connection):
        return "timestamp"
"""

INITIAL = """
from django.db import migrations, models

import shop.fields


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("at", shop.fields.NaiveDateTimeField()),
            ],
        ),
    ]
"""

AWARE = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.AlterField("event", "at", models.DateTimeField())]
"""

UTC = "USE_TZ = True"
PARIS = "USE_TZ = False\nTIME_ZONE = 'Europe/Paris'"


def _project(root: Path, tz: str) -> Path:
    migrations = {"0001_initial.py": INITIAL, "0002_aware.py": AWARE}
    write_project(root, "shop", migrations, timezone=tz, modules={"fields.py": FIELDS})
    return root


def _manage(project: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=project, env=project_env(project, dsn), capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _database_timezone(dsn: str, tz: str) -> None:
    """The TimeZone the database's new sessions start with."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        conn.execute(f"ALTER DATABASE {name[0]} SET TimeZone = '{tz}'")


def _pgwarden_migrate(project: Path, dsn: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return _manage(
        project, dsn, "pgwarden", "migrate", "--env", "test", "--yes", "--restamp",
        "--journal-file", str(tmp_path / "journal.jsonl"),
    )  # fmt: skip


def _relfilenode(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_relation_filenode('shop_event')").fetchone()
        assert row is not None
        return int(row[0])


def test_migrate_runs_with_djangos_timezone(db: str, tmp_path: Path) -> None:
    # The server's sessions start in Paris; Django (USE_TZ = True) sets UTC on its own.
    _database_timezone(db, "Europe/Paris")
    project = _project(tmp_path, UTC)
    r = _manage(project, db, "migrate", "shop", "0001", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    before = _relfilenode(db)

    r = _pgwarden_migrate(project, db, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # in place, as Django's own `migrate` runs it under UTC (was rewritten: the guarded
    # executor's session kept the database's Europe/Paris)
    assert _relfilenode(db) == before


def _cause(message: str) -> str:
    return message.partition("because of ")[2].partition(";")[0]


def _pw104(project: Path, dsn: str) -> dict[int, tuple[str, str]]:
    r = _manage(project, dsn, "pgwarden", "lint", "--unapplied", "--sql-only", "--format", "json")
    assert r.returncode in (0, 1), r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return {
        f["location"]["line"]: (f["severity"], _cause(f["message"]))
        for f in doc["findings"]
        if f["code"] == "PW104" and f["location"]["path"].endswith("0002_aware.py")
    }


REWRITE = "changing the type of at (timestamp -> timestamptz rewrites the table outside UTC)"


@pytest.mark.parametrize(("tz", "expected"), [(UTC, {}), (PARIS, {7: ("error", REWRITE)})])
def test_lint_grades_with_djangos_timezone(
    db: str, tmp_path: Path, tz: str, expected: dict[int, tuple[str, str]]
) -> None:
    project = _project(tmp_path, tz)
    r = _manage(project, db, "migrate", "shop", "0001", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    # UTC: in place (was an error: the session TimeZone was assumed not UTC)
    assert _pw104(project, db) == expected


@needs_pgbouncer
def test_migrate_through_pgbouncer_keeps_djangos_timezone(db: str, tmp_path: Path) -> None:
    # PgBouncer before 1.20 refuses a start-up `options` ("unsupported startup parameter"):
    # the TimeZone reaches the server as the start-up parameter libpq sends for PGTZ.
    _database_timezone(db, "UTC")
    project = _project(tmp_path, PARIS)
    with pgbouncer(db, pool_mode="session") as bouncer:
        through = bouncer.through
        r = _manage(project, through, "migrate", "shop", "0001", "--verbosity", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        before = _relfilenode(db)
        r = _pgwarden_migrate(project, through, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
    # rewritten, as Django's own `migrate` does it in Europe/Paris (in place only in UTC)
    assert _relfilenode(db) != before
