"""`manage.py pgwarden rehearse` copies the real content types and permissions, and sends
pre_/post_migrate on the copy.

tests/contrib/django_refdata: `notes` 0001 is applied (with real content types and
permissions, rows); pending are 0002 (AddField, then a RunPython that looks up the
`notes.topic` content type by value, as wagtail's 0081 does) and 0003 (SQL: AddField,
CreateModel Tag). With synthetic django_content_type rows the lookup failed (exit 3,
DoesNotExist). Now the rows of django_content_type and auth_permission are copied from
the database, the notes referencing them point at real ones, post_migrate creates the
content type and permissions of Tag on the copy, and the real database is untouched.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.django_site import manage_fixture

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_refdata"


def manage(dsn: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return manage_fixture(PROJECT, dsn, *args, cwd=cwd)


def _released(db: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """auth and notes 0001 migrated by plain `migrate` (its post_migrate created the
    content types and permissions), with topics and notes on several content types."""
    for target in (["auth"], ["notes", "0001"]):
        done = manage(db, "migrate", *target, "--verbosity", "0", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    conn.execute("INSERT INTO notes_topic (name) SELECT 't' || g FROM generate_series(1, 20) g")
    conn.execute(
        "INSERT INTO notes_note (content_type_id, object_id, text) "
        "SELECT c.id, g, 'n' || g FROM django_content_type c, generate_series(1, 3) g"
    )


def _real(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the rehearsal must not change on the real database."""

    def rows(query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(query).fetchall()]

    return {
        "content_types": rows("SELECT id, app_label, model FROM django_content_type ORDER BY 1"),
        "permissions": rows("SELECT id, content_type_id, codename FROM auth_permission ORDER BY 1"),
        "migrations": rows("SELECT app, name FROM django_migrations ORDER BY id"),
        "columns": rows(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ),
        "notes": rows("SELECT count(*), sum(content_type_id) FROM notes_note"),
    }


def test_runpython_reading_a_content_type_rehearses_on_copied_rows(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _released(db, conn, tmp_path)
    before = _real(conn)
    content_types, permissions = len(before["content_types"]), len(before["permissions"])
    report = tmp_path / "report.html"
    out = manage(
        db, "pgwarden", "rehearse", "--format", "json", "--report", str(report), cwd=tmp_path
    )
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert _real(conn) == before  # nothing of the rehearsal reached the real database
    doc = json.loads(out.stdout)
    assert doc["status"] == "completed", out.stderr
    assert doc["copied"] == [
        {"table": "django_content_type", "rows": content_types, "referenced_by": None},
        {"table": "auth_permission", "rows": permissions, "referenced_by": None},
    ]
    said = f"copied {content_types:,} rows of django_content_type from the database"
    assert said in out.stderr
    copied = {t["name"]: t for t in doc["tables"] if t["copied"]}
    assert set(copied) == {"django_content_type", "auth_permission"}
    by_name = {s["sql"].split(" (")[0].split(":")[0]: s for s in doc["steps"]}
    # the lookup found the real notes.topic content type; every synthetic note points at a
    # real content type (the RunPython checks it)
    step = by_name["notes.0002_note_about_topic"]
    assert step["status"] == "ok" and step["rows_written"] > 0, step
    # pre_migrate first, post_migrate last: Tag's content type and its 4 permissions,
    # created on the copy only
    pre, post = by_name["pre_migrate"], by_name["post_migrate"]
    assert pre["index"] == 0 and post["index"] == len(doc["steps"]) - 1
    assert pre["status"] == post["status"] == "ok"
    assert post["rows_written"] == 1 + 4, post
    assert "sending post_migrate on the rehearsal copy" in out.stderr
    # the HTML report locates SQL steps at the migration file, not at a temporary .sql
    html = report.read_text().replace("<wbr>", "")
    assert "notes.0003_topic_slug_tag at " in html
    assert "notes/migrations/0003_topic_slug_tag.py:" in html
    assert ".sql:" not in html and " copied</td>" in html


def test_a_copy_data_table_above_the_limit_is_refused_before_anything_starts(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _released(db, conn, tmp_path)
    rows = conn.execute("SELECT count(*) FROM django_content_type").fetchone()
    assert rows is not None and rows[0] > 3
    config = tmp_path / "pgwarden.toml"
    config.write_text("[rehearse]\ncopy_max_rows = 3\n")
    out = manage(db, "pgwarden", "rehearse", "--config", str(config), cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert (
        f"error: rehearse.copy_data: table django_content_type has {rows[0]:,} rows, more "
        "than rehearse.copy_max_rows (3); no rows were copied and nothing started"
    ) in out.stderr
    hint = f"hint: list only small reference tables in copy_data under [rehearse] in {config}"
    assert hint in out.stderr
    assert "starting the target" not in out.stderr
