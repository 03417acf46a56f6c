"""A finding on an operation of `batch_alter_table` points at that operation's line.

Alembic queues a batch's operations and runs them when the `with` block ends, so
the statements are written from the `with` line. Airflow's revisions are mostly
batches (airflow 3.1's 319a48850861: drop the FK, backfill, SET NOT NULL,
re-add the FK, all in one `with`); a finding on the `with` line does not say
which operation it is, and an ignore comment at the operation, as the docs
tell, is not seen there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.cli.analyse import lint as lint_cmd

SAMPLE = Path(__file__).parents[1] / "contrib" / "alembic_project"

ENV = """
from alembic import context

context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
with context.begin_transaction():
    context.run_migrations()
"""

REVISION = """\
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _index(batch_op):
    batch_op.create_index("dag_fileloc_idx", ["fileloc"])


def upgrade():
    with op.batch_alter_table("dag", schema=None) as batch_op:
        batch_op.drop_constraint("dag_bundle_name_fkey", type_="foreignkey")
        batch_op.alter_column("bundle_name", nullable=False, existing_type=sa.String(250))
        batch_op.create_foreign_key(
            "dag_bundle_name_fkey", "dag_bundle", ["bundle_name"], ["name"]
        )
        _index(batch_op)
        batch_op.create_index("dag_owner_idx", ["owner"])  # -- pgwarden: ignore PW101 small
    op.create_index("dag_run_idx", "dag_run", ["dag_id"])
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "versions").mkdir()
    shutil.copy(SAMPLE / "alembic.ini", tmp_path / "alembic.ini")
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "versions" / "0001_dag.py").write_text(REVISION)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _line(text: str) -> int:
    (number,) = [i for i, line in enumerate(REVISION.splitlines(), 1) if text in line]
    return number


def test_batch_operations_are_located_at_their_own_lines(project: Path) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--format", "json"])
    assert r.exit_code == 1, r.output
    doc: dict[str, Any] = json.loads(r.stdout)
    found = {(f["code"], f["location"]["line"]) for f in doc["findings"]}
    assert ("PW103", _line("batch_op.alter_column(")) in found
    assert ("PW102", _line("batch_op.create_foreign_key(")) in found
    assert ("PW101", _line('batch_op.create_index("dag_fileloc_idx"')) in found  # in a helper
    assert ("PW101", _line('op.create_index("dag_run_idx"')) in found
    # the ignore at the operation suppresses its finding
    assert ("PW101", _line('batch_op.create_index("dag_owner_idx"')) not in found
    assert not [f for f in doc["findings"] if f["location"]["line"] == _line("with op.batch")]
