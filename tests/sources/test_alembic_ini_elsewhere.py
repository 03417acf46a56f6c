"""A revision Alembic cannot load, or whose code fails, is named by its file and line also
when alembic.ini is given by a path with `..` (run from the versions folder, or from a
sibling folder). Alembic's `%(here)s` is then not normalised
(`/proj/versions/../versions`), and the error said `..: Alembic cannot load this
revision` without naming the revision."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("alembic")

PROJECT = Path(__file__).parents[1] / "contrib" / "alembic_project"

BAD = '''"""bad

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    {line}
'''


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("from myapp.models import NoteType  # noqa", "0006_bad.py:15"),  # loading the file
        ('op.add_column("invoices", sa.Column("note", sa.Txt()))', "0006_bad.py:15"),  # running
    ],
    ids=["import", "module-attribute"],
)
def test_the_failing_revision_is_named_from_another_folder(
    tmp_path: Path, line: str, where: str
) -> None:
    site = tmp_path / "proj"
    shutil.copytree(PROJECT, site, ignore=shutil.ignore_patterns("__pycache__"))
    (site / "versions/0006_bad.py").write_text(BAD.format(line=line))
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", "lint", "--alembic", "../alembic.ini"],
        cwd=site / "versions",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"pgwarden: error: {where}: "), r.stderr
