"""An env.py that keeps its revisions in another version table (`version_table=...`).

CKAN's extensions (ckanext-*) each keep their Alembic history in a table of their own,
`<plugin>_alembic_version`, next to CKAN core's `alembic_version` in one database.
pgwarden must take that table as Alembic's bookkeeping (not lint it) and read the
database's position from it, not from core's `alembic_version`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.cli.analyse import lint as lint_cmd

SAMPLE = Path(__file__).parents[1] / "contrib" / "alembic_project"

ENV = """
from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
opts = dict(version_table="harvest_alembic_version", transaction_per_migration=True)
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, **opts)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(url).connect() as connection:
        context.configure(connection=connection, **opts)
        with context.begin_transaction():
            context.run_migrations()
"""

REVISIONS = {
    "h1": ("None", 'op.create_table("harvest_source", sa.Column("id", sa.Text, primary_key=True))'),
    "h2": ('"h1"', 'op.add_column("harvest_source", sa.Column("url", sa.Text))'),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "versions").mkdir()
    shutil.copy(SAMPLE / "alembic.ini", tmp_path / "alembic.ini")
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "pgwarden.toml").write_text("[environments.dev]\nprotected = false\n")
    for rev, (down, body) in REVISIONS.items():
        (tmp_path / "versions" / f"{rev}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{rev}"\ndown_revision = {down}\n\n\ndef upgrade():\n    {body}\n'
        )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def at_h1(project: Path, db: str) -> str:
    """CKAN core at its own revision in alembic_version; the extension at h1 in its table."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        c.execute("INSERT INTO alembic_version VALUES ('ccb05ee9b4a5')")
        c.execute("CREATE TABLE harvest_alembic_version (version_num varchar(32) PRIMARY KEY)")
        c.execute("INSERT INTO harvest_alembic_version VALUES ('h1')")
        c.execute("CREATE TABLE harvest_source (id text PRIMARY KEY)")
    return db


def test_the_version_table_is_not_linted(project: Path) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic"])
    assert "harvest_alembic_version" not in r.stdout, r.stdout
    assert r.exit_code == 0, r.output  # h2's ADD COLUMN: a warning (no lock_timeout)


def test_lint_unapplied_reads_that_table(at_h1: str) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--unapplied", "--database-url", at_h1])
    assert r.exit_code == 0, r.output
    assert "skipped 1 applied revision(s) (h1)" in r.stderr
    assert "harvest_alembic_version is h1" in r.stderr
    assert "versions/h2.py" in r.stdout


def test_apply_moves_that_table_only(at_h1: str, tmp_path: Path) -> None:
    from pgwarden.cli.apply import apply as apply_cmd

    args = ["--alembic", "--database-url", at_h1, "--env", "dev", "--restamp"]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(tmp_path / "j.jsonl")])
    assert r.exit_code == 0, r.output
    with psycopg.connect(at_h1, autocommit=True) as c:
        assert c.execute("SELECT version_num FROM harvest_alembic_version").fetchall() == [("h2",)]
        assert c.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("ccb05ee9b4a5",)
        ]
        assert c.execute("SELECT to_regclass('harvest_source') IS NOT NULL").fetchone() == (True,)


def test_lint_with_a_snapshot_says_it_cannot_tell(at_h1: str, tmp_path: Path) -> None:
    """`stats dump` records alembic_version (core's here), not the extension's table."""
    from pgwarden.cli.analyse import stats as stats_cmd

    out = str(tmp_path / "stats.json")
    r = CliRunner().invoke(stats_cmd, ["dump", "--database-url", at_h1, "-o", out])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--stats", out])
    assert "env.py keeps the revisions in harvest_alembic_version" in r.stderr, r.output
    assert "is not a revision of this project" not in r.output
    assert "versions/h1.py" in r.stdout and "versions/h2.py" in r.stdout
