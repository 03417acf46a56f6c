"""`manage.py pgwarden lint` reads the same settings as `pgwarden lint`.

It passed only `ignore` on: `unknown_type_change` and the DML limits (`dml_max_rows`,
`dml_max_share`, with the planner's row estimates when it reads the live database)
of pyproject.toml / pgwarden.toml were silently dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"
SRC = Path(__file__).parents[2] / "src"

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


def _manage(project: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=dsn, MULTISITE_CONTRIB="", COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(project / "manage.py"), *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_django_lint_reads_unknown_type_change(db: str, tmp_path: Path) -> None:
    project = tmp_path / "site"
    shutil.copytree(PROJECT, project)
    (project / "beta" / "migrations" / "0005_title_text.py").write_text(MIGRATION)
    r = _manage(project, db, "migrate", "beta", "0001", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr

    def pw104(*args: str) -> str | None:
        r = _manage(
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
