"""`pgwarden lint --alembic` on a revision Alembic cannot load (a Python syntax error, an
import the project's path does not have, a down_revision naming no revision) is one clear
error naming the file, exit 2. Before, each was 'internal error: ... this is a bug in
pgwarden' (SyntaxError, ModuleNotFoundError, KeyError)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("alembic")

PROJECT = Path(__file__).parent / "alembic_project"
HEAD = '''"""bad

Revision ID: 0006
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op
{imports}
revision = "0006"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("note", sa.Text()){close}


def downgrade() -> None:
    pass
'''
OK = {"down": "0005", "imports": "", "close": ")"}


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ({"close": ""}, ["versions/0006_bad.py:17", "SyntaxError"]),
        (
            {"imports": "from myapp.models import NoteType\n"},
            ["versions/0006_bad.py", "No module named 'myapp'", "prepend_sys_path"],
        ),
        ({"down": "0099"}, ["'0099'", "down_revision"]),
    ],
    ids=["syntax-error", "missing-import", "missing-down-revision"],
)
def test_a_revision_alembic_cannot_load_is_a_clear_error(
    tmp_path: Path, case: dict[str, str], words: list[str]
) -> None:
    site = tmp_path / "proj"
    shutil.copytree(PROJECT, site)
    (site / "versions/0006_bad.py").write_text(HEAD.format(**{**OK, **case}))
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", "lint", "--alembic", "alembic.ini"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("pgwarden: error: "), r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


def test_a_script_location_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", "lint", "--alembic", "alembic.ini"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "internal error" not in r.stderr, r.stderr
    assert r.stderr.startswith("pgwarden: error: alembic: Path doesn't exist"), r.stderr
    assert "script_location" in r.stderr, r.stderr


BODY = '''"""bad body

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {line}


def downgrade() -> None:
    pass
'''


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('op.add_column("invoices", sa.Column("note", sa.Txt()))', ["has no attribute 'Txt'"]),
        ('op.add_column("invoices", sa.Column("note", Text()))', ["NameError", "'Text'"]),
        ("import myapp.fields  # noqa", ["No module named 'myapp'"]),
    ],
    ids=["module-attribute", "name", "import"],
)
def test_a_revision_whose_own_code_fails_is_an_error_not_a_skip(
    tmp_path: Path, line: str, words: list[str]
) -> None:
    """Before, such a revision was 'cannot be rendered offline: it reads data or inspects
    the connection', skipped with a warning and exit 0 (nothing linted): it fails online
    too, so it is an error naming the file and line, exit 2."""
    site = tmp_path / "proj"
    shutil.copytree(PROJECT, site)
    (site / "versions/0006_bad.py").write_text(BODY.format(line=line))
    lint = ["lint", "--alembic", "alembic.ini", "--range", "0005:head"]
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", *lint],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "reads data" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert r.stderr.startswith("pgwarden: error: versions/0006_bad.py:17: "), r.stderr
    for word in words:
        assert word in r.stderr, r.stderr
