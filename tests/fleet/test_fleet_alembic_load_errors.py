"""fleet --alembic on a project with a revision Alembic cannot load (here: a Python syntax
error) is one error naming the file, before anything runs, as `pgwarden lint --alembic`
says it. Before, alembic_change let the SyntaxError out: an internal error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pgwarden.errors import InputError
from pgwarden.fleet.alembic import alembic_change

pytest.importorskip("alembic")

PROJECT = Path(__file__).resolve().parents[1] / "contrib" / "alembic_project"
BAD = '''"""bad"""
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute("SELECT 1"
'''


def test_a_revision_that_cannot_load_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "proj"
    shutil.copytree(PROJECT, site)
    (site / "versions/0006_bad.py").write_text(BAD)
    monkeypatch.chdir(site)
    with pytest.raises(InputError) as err:
        alembic_change("alembic.ini", {"tenant-a": ("0005",)})
    assert "versions/0006_bad.py:9" in err.value.message, err.value.message
    assert "SyntaxError" in err.value.message
