"""`pgwarden rehearse --alembic` without --schema-from: the starting schema is labelled as
the revisions it came from, and the session TimeZone the steps ran with is said to be
assumed (was: "given SQL", and UTC silently), with how to give production's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

PROJECT = Path(__file__).parents[1] / "contrib" / "alembic_project"
TZ_REVISION = '''"""paid_at becomes timezone-aware

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
    op.add_column("invoices", sa.Column("paid_at", sa.DateTime, nullable=True))
    op.alter_column("invoices", "paid_at", type_=sa.DateTime(timezone=True))


def downgrade() -> None:
    op.drop_column("invoices", "paid_at")
'''


def test_alembic_range_without_a_source_says_the_timezone_it_assumed(
    pg_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgwarden.cli.rehearse import rehearse as rehearse_cmd

    project = tmp_path / "project"
    shutil.copytree(PROJECT, project)
    (project / "versions" / "0006_paid_at_tz.py").write_text(TZ_REVISION)
    monkeypatch.chdir(project)
    monkeypatch.setenv("PGWARDEN_REHEARSALS", str(tmp_path / "records"))
    args = ["--alembic", "--range", "0005:0006", "--database-url", pg_cluster.dsn(),
            "--rows-cap", "500", "--format", "json"]  # fmt: skip
    r = CliRunner().invoke(rehearse_cmd, args)
    assert r.exit_code in (0, 1), r.output
    data = orjson.loads(r.stdout)
    assert data["status"] == "completed", data["steps"]
    assert data["schema_source"] == "Alembic revisions base:0005 (not traced)"
    assert data["timezone"]["name"] == "UTC" and data["timezone"]["assumed"]
    (note,) = [n for n in data["notes"] if "TimeZone" in n]
    assert note.startswith(
        "the steps ran with TimeZone 'UTC', the rehearsal database's default, since nothing "
        "said what production's is: "
    )
    assert "ALTER COLUMN paid_at TYPE TIMESTAMP WITH TIME" in note and ") in place;" in note
    assert "--timezone NAME" in note
