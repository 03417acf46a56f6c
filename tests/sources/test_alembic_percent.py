"""A `%` in a revision's SQL is applied as Alembic writes it online, not doubled.

Flask-Migrate's env.py (redash, superset and many more) renders offline with
`literal_binds=True` and no `paramstyle`: SQLAlchemy then compiles for psycopg's
`pyformat` style and escapes every `%` as `%%`, as `alembic upgrade --sql` prints.
Online, `alembic upgrade head` stores `100%`. Superset's env.py gives no
`literal_binds` either: a bound value then rendered as a placeholder
(`viz_type=%(viz_type)s`), which lint reported as a syntax error. pgwarden renders
the revisions offline to lint and apply them, so it must render them as online
runs them.
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

# Flask-Migrate's offline branch: literal_binds, no dialect_opts.
FLASK_MIGRATE = """
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
"""

# Superset's offline branch: the URL alone.
SUPERSET = FLASK_MIGRATE.replace(
    "context.configure(url=url, literal_binds=True)", "context.configure(url=url)"
)

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.execute("UPDATE plan SET label = '100%' WHERE id = 1")
    op.execute(sa.text("UPDATE plan SET label = '50%' WHERE id = 2"))
    plan = sa.table("plan", sa.column("id", sa.Integer), sa.column("label", sa.Text))
    op.execute(plan.update().where(plan.c.id == 3).values(label="25% off"))
"""


@pytest.fixture(params=[FLASK_MIGRATE, SUPERSET], ids=["flask-migrate", "superset"])
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    assert "literal_binds" not in SUPERSET
    (tmp_path / "versions").mkdir()
    shutil.copy(SAMPLE / "alembic.ini", tmp_path / "alembic.ini")
    (tmp_path / "env.py").write_text(request.param)
    (tmp_path / "pgwarden.toml").write_text("[environments.dev]\nprotected = false\n")
    (tmp_path / "versions" / "0001_labels.py").write_text(REVISION)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_lint_reads_the_sql_online_alembic_runs(project: Path) -> None:
    src = read_alembic_sources("alembic.ini")
    text = "\n".join(st.text for _, stmts in src.sources for st in stmts)
    assert "'100%'" in text and "'50%'" in text and "'25% off'" in text
    assert "%%" not in text


def test_apply_stores_the_values_alembic_stores(project: Path, db: str, tmp_path: Path) -> None:
    from pgwarden.cli.apply import apply as apply_cmd

    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE plan (id int PRIMARY KEY, label text)")
        c.execute("INSERT INTO plan VALUES (1, ''), (2, ''), (3, '')")
    args = ["--alembic", "--database-url", db, "--env", "dev", "--restamp"]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(tmp_path / "j.jsonl")])
    assert r.exit_code == 0, r.output
    with psycopg.connect(db, autocommit=True) as c:
        rows = c.execute("SELECT label FROM plan ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["100%", "50%", "25% off"]
