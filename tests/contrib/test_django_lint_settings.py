"""`manage.py pgwarden lint` reads the same settings as `pgwarden lint`.

It passed only `ignore` on: `unknown_type_change` and the DML limits (`dml_max_rows`,
`dml_max_share`, with the planner's row estimates when it reads the live database)
of pyproject.toml / pgwarden.toml were silently dropped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.contrib.django_site import manage_multi

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"

MIGRATION = """
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("beta", "0004_shelf")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE beta_book ALTER COLUMN title TYPE text", migrations.RunSQL.noop
        ),
    ]
"""


def test_django_lint_reads_unknown_type_change(db: str, tmp_path: Path) -> None:
    project = tmp_path / "site"
    shutil.copytree(PROJECT, project)
    (project / "beta" / "migrations" / "0005_title_text.py").write_text(MIGRATION)
    r = manage_multi(project, db, "migrate", "beta", "0001", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr

    def pw104(*args: str) -> str | None:
        r = manage_multi(
            project, db, "pgwarden", "lint", "--unapplied", "--sql-only", "--format", "json", *args
        )
        assert r.returncode in (0, 1), r.stdout + r.stderr
        doc: dict[str, Any] = json.loads(r.stdout)
        found = [
            f["severity"]
            for f in doc["findings"]
            if f["code"] == "PW104" and "0005_title_text" in f["location"]["path"]
        ]
        return found[0] if found else None

    # from the SQL alone the current type is unknown; a change to text is graded a warning
    assert pw104() == "warning"
    config = tmp_path / "pgwarden.toml"
    config.write_text('unknown_type_change = "error"\n')
    assert pw104("--config", str(config)) == "error"  # was "warning": the setting was dropped
