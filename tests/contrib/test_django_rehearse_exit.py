"""`manage.py pgwarden rehearse` exits as `pgwarden rehearse` does on the same plan.

A step that failed on the copy (RH102; RH103, a deploy hazard, stops a rehearsal the
same way) exited 3 under Django, the code of a migration that failed on the real
database, while `pgwarden rehearse` and docs/rehearse.md say 1: nothing real failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.test_django_ctrl_c_twice import _project
from tests.contrib.test_django_rehearse_ctrl_c import DJANGO_MIGRATIONS, sandbox, sandbox_env

pytest.importorskip("django")

__all__ = ["sandbox"]  # the fixture, for pytest

FAILS_ON_THE_COPY = """
from django.db import migrations

class Migration(migrations.Migration):
    dependencies = [("slow", "0001_initial")]
    operations = [migrations.RunSQL("SELECT 1 / 0", migrations.RunSQL.noop)]
"""


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_step_failing_on_the_copy_exits_1_as_pgwarden_rehearse(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path, sandbox: Path
) -> None:
    _project(tmp_path, FAILS_ON_THE_COPY)
    conn.execute(DJANGO_MIGRATIONS)
    env = sandbox_env(db, tmp_path, sandbox, COLUMNS="200")
    django = _run([sys.executable, "-m", "django", "pgwarden", "rehearse"], tmp_path, env)
    text = django.stdout + django.stderr
    assert django.stdout.startswith("rehearsal failed: "), text
    assert "error RH102 step_failed" in django.stdout, text

    (tmp_path / "0002.sql").write_text("SELECT 1 / 0;\n")
    plain = _run(
        [sys.executable, "-m", "pgwarden", "rehearse", "0002.sql", "--schema-from", db],
        tmp_path,
        env,
    )
    assert "RH102" in plain.stdout, plain.stdout + plain.stderr
    assert (django.returncode, plain.returncode) == (1, 1), text
    assert "Traceback" not in text
