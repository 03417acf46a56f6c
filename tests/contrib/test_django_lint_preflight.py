"""`manage.py pgwarden lint` counts the rows a new constraint would reject (PW401), as
`pgwarden lint` does, and knows where a RunPython runs: a count after one is a warning
naming it (the code may fix the rows), a count before one stays an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.django_site import manage_multi

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"

MIGRATION = """
from django.db import migrations, models


def fill_bar(apps, schema_editor):
    apps.get_model("beta", "Book").objects.filter(bar=None).update(bar=0)


class Migration(migrations.Migration):
    dependencies = [("beta", "0004_shelf")]
    operations = [
        {operations}
    ]
"""
FILL = "migrations.RunPython(fill_bar, migrations.RunPython.noop),"
NOT_NULL = 'migrations.AlterField(model_name="book", name="bar", field=models.IntegerField()),'


def test_django_lint_counts_rows_and_knows_where_runpython_runs(db: str, tmp_path: Path):
    project = tmp_path / "site"
    shutil.copytree(PROJECT, project)
    r = manage_multi(project, db, "migrate", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("INSERT INTO alpha_author (name, email) VALUES ('a', 'a@x') RETURNING id")
        c.execute(
            "INSERT INTO beta_book (title, author_id, bar, editor_id) SELECT 't' || g, "
            "a.id, CASE WHEN g % 2 = 0 THEN g END, a.id FROM alpha_author a, "
            "generate_series(1, 6) g"
        )
    migration = project / "beta" / "migrations" / "0005_bar_not_null.py"

    def pw401(*operations: str) -> list[dict[str, Any]]:
        body = "\n        ".join(operations)
        migration.write_text(MIGRATION.replace("{operations}", body))
        r = manage_multi(project, db, "pgwarden", "lint", "--unapplied", "--format", "json")
        assert r.returncode in (0, 1), r.stdout + r.stderr
        doc: dict[str, Any] = json.loads(r.stdout)
        return [f for f in doc["findings"] if f["code"] == "PW401"]

    alone = pw401(NOT_NULL)  # was left out of Django's lint: no PW401 at all
    assert [f["severity"] for f in alone] == ["error"]
    assert alone[0]["message"].startswith("3 existing row(s) violate NOT NULL on beta_book(bar)")
    after = pw401(FILL, NOT_NULL)
    assert [f["severity"] for f in after] == ["warning"]
    assert after[0]["message"].startswith(
        "3 row(s) violate NOT NULL on beta_book(bar) today; Raw Python operation "
        "(beta.0005_bar_not_null) at "
    )
    assert "0005_bar_not_null.py:12 may change them first" in after[0]["message"]
    before = pw401(NOT_NULL, FILL)  # the code runs after the constraint: no help
    assert [f["severity"] for f in before] == ["error"]
