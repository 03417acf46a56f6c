"""A database at two heads, the merge revision still to run: as `alembic upgrade head` runs it.

redash's 89bc7873a3e0 "fix_multiple_heads" merges two branches that were deployed
before it: between those deploys and the merge's, alembic_version holds both
heads. `alembic upgrade head` then runs the merge alone. pgwarden lint (with
the database or its snapshot) and apply must take the same revisions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.cli.analyse import lint as lint_cmd
from pgwarden.cli.analyse import stats as stats_cmd
from pgwarden.sources.alembic import _sqlalchemy_url

SAMPLE = Path(__file__).parents[1] / "contrib" / "alembic_project"

REVISIONS = {
    "0001_base.py": ("0001", "None", 'op.create_table("queries", sa.Column("id", sa.Integer))'),
    "0002_dashboards.py": (
        "0002",
        '"0001"',
        'op.create_table("dashboards", sa.Column("x", sa.Text))',
    ),
    "0003_options.py": ("0003", '"0001"', 'op.add_column("queries", sa.Column("o", sa.Text))'),
    "0004_merge.py": (
        "0004",
        '("0002", "0003")',
        'op.create_index("queries_id_idx", "queries", ["id"])',
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "versions"))
    (copy / "versions").mkdir()
    for name, (rev, down, op) in REVISIONS.items():
        (copy / "versions" / name).write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f'revision = "{rev}"\ndown_revision = {down}\n\n\ndef upgrade():\n    {op}\n'
        )
    monkeypatch.chdir(copy)
    return copy


@pytest.fixture
def at_two_heads(project: Path, db: str) -> str:
    """The database after `alembic upgrade 0002` and `alembic upgrade 0003`."""
    for rev in ("0002", "0003"):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={_sqlalchemy_url(db)}", "upgrade", rev],
            capture_output=True,
            text=True,
            env={**os.environ, "PGWARDEN_GUARDED": "0"},
            cwd=project,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert _version(db) == ["0002", "0003"]
    return db


def _version(db: str) -> list[str]:
    with psycopg.connect(db, autocommit=True) as c:
        return sorted(str(r[0]) for r in c.execute("SELECT version_num FROM alembic_version"))


def _skipped(stderr: str) -> set[str]:
    """The revisions of the 'skipped N applied revision(s) (a, b)' warning."""
    (line,) = [x for x in stderr.splitlines() if "applied revision(s) (" in x]
    return set(line.split("(")[2].split(")")[0].split(", "))


def _linted(output: str) -> set[str]:
    return {line.split(":")[0] for line in output.splitlines() if line.startswith("versions/")}


def test_lint_with_the_database_takes_only_the_merge(at_two_heads: str) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--unapplied", "--database-url", at_two_heads])
    assert r.exit_code == 0, r.output  # the merge's CREATE INDEX, on an empty table
    assert _linted(r.stdout) == {"versions/0004_merge.py"}, r.output
    assert _skipped(r.stderr) == {"0001", "0002", "0003"}, r.stderr
    assert "alembic_version is 0002, 0003" in r.stderr


def test_lint_with_a_snapshot_takes_only_the_merge(at_two_heads: str, tmp_path: Path) -> None:
    out = str(tmp_path / "stats.json")
    r = CliRunner().invoke(stats_cmd, ["dump", "--database-url", at_two_heads, "-o", out])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--stats", out])
    assert r.exit_code == 0, r.output
    assert _linted(r.stdout) == {"versions/0004_merge.py"}, r.output
    assert _skipped(r.stderr) == {"0001", "0002", "0003"}, r.stderr


def test_apply_runs_the_merge_as_alembic_upgrade_head_does(
    at_two_heads: str, tmp_path: Path
) -> None:
    from pgwarden.cli.apply import apply as apply_cmd

    args = ["--alembic", "--database-url", at_two_heads, "--env", "dev", "--restamp"]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(tmp_path / "j.jsonl")])
    assert r.exit_code == 0, r.output
    assert _version(at_two_heads) == ["0004"]
    with psycopg.connect(at_two_heads, autocommit=True) as c:
        assert c.execute("SELECT to_regclass('queries_id_idx')").fetchone() == ("queries_id_idx",)


def test_the_env_py_hook_runs_the_merge(project: Path, db: str, tmp_path: Path) -> None:
    """`alembic upgrade head` through `pgwarden.contrib.alembic.configure` (the sample env.py
    with PGWARDEN_GUARDED=1), on a database pgwarden stamped that is at two heads."""
    from pgwarden.cli.apply import apply as apply_cmd

    args = ["--alembic", "--range", "base:0002", "--database-url", db, "--env", "dev"]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(tmp_path / "j.jsonl")])
    assert r.exit_code == 0, r.output
    for rev, guarded in (("0003", "0"), ("head", "1")):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={_sqlalchemy_url(db)}", "upgrade", rev],
            capture_output=True,
            text=True,
            env={**os.environ, "PGWARDEN_GUARDED": guarded},
            cwd=project,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0004" not in _version(db) or rev == "head"
    assert _version(db) == ["0004"]
