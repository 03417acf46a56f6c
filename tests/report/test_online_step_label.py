"""An Alembic revision that runs online is named as such where steps are shown.

Its plan statement is a placeholder (a DO block that raises, should it ever run
as SQL); the progress line and `pgwarden status` showed that `DO $pgwarden$ ...
RAISE EXCEPTION`, which reads like an error, and a failed revision got the hint
for SQL ("fix the statement and run the apply again").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.cli.apply import apply as apply_cmd
from pgwarden.cli.apply import status as status_cmd

PROJECT = Path(__file__).parents[1] / "contrib" / "alembic_reads_project"

FAILING = '''"""count the rows, then reference a table that is not there (reads data)

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(sa.text("SELECT count(*) FROM pg_class")).scalar()
    op.execute("CREATE TABLE t (id int REFERENCES nowhere (id))")


def downgrade() -> None:
    pass
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__", "versions"))
    (copy / "versions").mkdir()
    (copy / "versions" / "0001_count_then_fail.py").write_text(FAILING)
    monkeypatch.chdir(copy)
    return copy


def test_an_online_revision_is_labelled_and_its_failure_says_what_to_do(
    db: str, project: Path, tmp_path: Path
) -> None:
    journal = str(tmp_path / "j.jsonl")
    args = ["--alembic", "--database-url", db, "--env", "dev", "--journal-file", journal]
    r = CliRunner().invoke(apply_cmd, args)
    assert r.exit_code == 3, r.output
    label = "alembic revision 0001 (online: 0001_count_then_fail.py)"
    started = [ln for ln in r.output.splitlines() if ln.startswith("▶")]
    assert any(ln.endswith(": " + label) for ln in started), r.output
    assert "RAISE EXCEPTION" not in r.output
    text = " ".join(r.output.split())
    assert 'relation "nowhere" does not exist' in text
    assert "fix the statement" not in text
    assert "fix the revision file or the data it needs" in text
    assert "run `pgwarden apply --alembic` again; it continues after alembic_version" in text

    status = CliRunner().invoke(status_cmd, ["--database-url", db])
    assert status.exit_code == 0, status.output
    assert any(ln.split()[1:] == ["failed", *label.split()] for ln in status.output.splitlines()), (
        status.output
    )
    assert "DO $pgwarden$" not in status.output
