"""`fleet apply --alembic` renders, for a target at two heads (both branches deployed, the
merge revision not yet), only the merge, as `alembic upgrade head` runs it there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("alembic")

from pgwarden.errors import UsageError
from pgwarden.fleet.alembic import alembic_change

SAMPLE = Path(__file__).parents[1] / "contrib" / "alembic_project"
REVISIONS = {
    "0001": ("None", 'op.create_table("queries", sa.Column("id", sa.Integer))'),
    "0002": ('"0001"', 'op.create_table("dashboards", sa.Column("x", sa.Text))'),
    "0003": ('"0001"', 'op.add_column("queries", sa.Column("o", sa.Text))'),
    "0004": ('("0002", "0003")', 'op.create_index("queries_id_idx", "queries", ["id"])'),
}


def test_a_target_at_two_heads_gets_the_merge_only(tmp_path: Path) -> None:
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    (tmp_path / "versions").mkdir()
    for rev, (down, op) in REVISIONS.items():
        (tmp_path / "versions" / f"{rev}_r.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{rev}"\ndown_revision = {down}\n\n\ndef upgrade():\n    {op}\n'
        )
    ini = tmp_path / "alembic.ini"
    change = alembic_change(ini, {"t1": ("0002", "0003"), "t2": ("0001",)})
    assert change.heads == ("0004",)
    assert change.revisions["0002,0003"] == ("0004",)
    assert sorted(change.revisions["0001"]) == ["0002", "0003", "0004"]
    with pytest.raises(UsageError, match="t3"):
        alembic_change(ini, {"t3": ("0099",)})
