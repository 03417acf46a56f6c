"""`pgwarden lint --alembic`: a finding about the transaction a revision's statements
run in names Alembic's transaction, not a `BEGIN ... COMMIT written in the file`: the
revision has none (Alembic's offline SQL writes them), so the words sent the user
looking for a BEGIN their file does not hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("alembic")

PROJECT = Path(__file__).parent / "alembic_project"
REVISION = '''"""note column

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
    op.add_column("invoices", sa.Column("note", sa.Text()))
    op.create_index("ix_invoices_note", "invoices", ["note"], postgresql_concurrently=True)
    op.execute("UPDATE invoices SET note = ''")


def downgrade() -> None:
    pass
'''


def test_transaction_words_name_alembic_not_a_begin_in_the_file(tmp_path: Path) -> None:
    site = tmp_path / "proj"
    shutil.copytree(PROJECT, site)
    (site / "versions/0006_note.py").write_text(REVISION)
    lint = ["lint", "--alembic", "alembic.ini", "--range", "0005:head"]
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", *lint],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    out = " ".join(r.stdout.split())  # unwrapped
    assert "PW130" in out and "PW121" in out, out
    assert "written in the file" not in out, out
    words = "inside the transaction Alembic runs the migration in"
    assert f"CREATE INDEX CONCURRENTLY runs {words}" in out, out
    assert f"this runs {words}" in out, out
