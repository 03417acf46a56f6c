"""A revision that cannot render offline, on one branch: the other branch is not run twice.

Alembic renders branches one after the other. When a revision fails offline
(it reads data), pgwarden renders again from there; starting from that revision
alone, Alembic took the other branch, already rendered, as not run, and its
revisions came twice: linted twice, and applied twice (`relation "t_d1" already
exists`). The shape is a merge of branches where one revision `depends_on` the
other branch, as in projects with branch labels.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.sources.alembic import read_alembic_sources

SAMPLE = Path(__file__).parents[1] / "contrib" / "alembic_project"

ENV = """
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
"""

REVISIONS = {  # id: (down_revision, extra, upgrade body)
    "r1": ("None", "", 'op.create_table("t", sa.Column("id", sa.Integer))'),
    "a1": ('"r1"', "", 'op.create_index("t_a1", "t", ["id"])'),
    "b1": ('"r1"', 'branch_labels = ("feature",)', 'op.create_index("t_b1", "t", ["id"])'),
    "b2": ('"b1"', "", 'op.get_bind().execute(sa.text("SELECT 1")).fetchall()'),
    "d1": ('"r1"', 'depends_on = "b1"', 'op.create_index("t_d1", "t", ["id"])'),
    "m": ('("a1", "b2", "d1")', "", 'op.create_index("t_m", "t", ["id"])'),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "versions").mkdir()
    shutil.copy(SAMPLE / "alembic.ini", tmp_path / "alembic.ini")
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "pgwarden.toml").write_text("[environments.dev]\nprotected = false\n")
    for rev, (down, extra, body) in REVISIONS.items():
        (tmp_path / "versions" / f"{rev}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{rev}"\ndown_revision = {down}\n{extra}\n\n\n'
            f"def upgrade():\n    {body}\n"
        )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_revision_is_linted_once(project: Path) -> None:
    src = read_alembic_sources("alembic.ini")
    indexes = [
        st.text for _, stmts in src.sources for st in stmts if st.text.startswith("CREATE INDEX")
    ]
    assert sorted(indexes) == sorted(
        f"CREATE INDEX t_{rev} ON t (id)" for rev in ("a1", "b1", "d1", "m")
    )
    assert [s.revision for s in src.skipped] == ["b2"]


def test_apply_runs_each_revision_once(project: Path, db: str, tmp_path: Path) -> None:
    from pgwarden.cli.apply import apply as apply_cmd

    args = ["--alembic", "--database-url", db, "--env", "dev"]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(tmp_path / "j.jsonl")])
    assert r.exit_code == 0, r.output
    with psycopg.connect(db, autocommit=True) as c:
        assert [v for (v,) in c.execute("SELECT version_num FROM alembic_version")] == ["m"]
        names = {n for (n,) in c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 't'")}
    assert names == {"t_a1", "t_b1", "t_d1", "t_m"}
