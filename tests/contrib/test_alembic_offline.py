"""Alembic revisions that read data or inspect the connection (#15.8), and the URL (#15.9).

Such revisions cannot render offline: lint names each one, skips it with a
warning and lints the rest (apply and the env.py hook run them online:
test_alembic_online.py). An alembic.ini whose sqlalchemy.url is
empty works, and --database-url is the URL env.py sees.
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
from pgwarden.sources.alembic import _sqlalchemy_url, read_alembic_sources

PROJECT = Path(__file__).parent / "alembic_reads_project"
READS = "versions/0002_dedupe_metric_keys.py: revision 0002 cannot be rendered offline"
INSPECTS = "versions/0004_inspect_columns.py: revision 0004 cannot be rendered offline"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(copy)
    return copy


def _alembic(
    project: Path, db: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={_sqlalchemy_url(db)}", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PGWARDEN_GUARDED": "0", "PGWARDEN_ENV": "dev", **(env or {})},
        cwd=project,
        timeout=120,
    )


def _version(db: str) -> list[str]:
    with psycopg.connect(db, autocommit=True) as c:
        return [str(r[0]) for r in c.execute("SELECT version_num FROM alembic_version")]


def test_lint_skips_the_revisions_that_read_data_and_lints_the_rest(project: Path) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--range", "0001:head", "--format", "github"])
    assert r.exit_code == 1, r.output  # 0003's index and 0005's NOT NULL on metrics
    assert "internal error" not in r.output
    assert f"warning: {READS}: it reads data or inspects the connection (AttributeError:" in (
        r.stderr
    )
    assert INSPECTS in r.stderr and "NoInspectionAvailable" in r.stderr
    assert "title=PW101" in r.stdout and "file=versions/0003_metrics_key_index.py" in r.stdout
    assert "title=PW103" in r.stdout and "file=versions/0005_metrics_value_not_null.py" in r.stdout
    # each skipped revision is in the report too (CI uploads it; before, only stderr said so)
    assert "::warning file=versions/0002_dedupe_metric_keys.py,line=1" in r.stdout, r.stdout
    assert "title=PW133" in r.stdout and "this revision was not linted" in r.stdout
    assert "::warning file=versions/0004_inspect_columns.py,line=1" in r.stdout
    src = read_alembic_sources("alembic.ini")
    assert src.revisions == ("0001", "0003", "0005")
    assert [(s.revision, s.why) for s in src.skipped] == [("0002", "offline"), ("0004", "offline")]


def test_skipped_revision_keeps_one_transaction_for_the_whole_run(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_TRANSACTION_PER_MIGRATION", "0")
    from pgwarden import commands

    plan, _ = commands.lint([], sources=read_alembic_sources("alembic.ini"))
    kinds = [s.tree.get("TransactionStmt", {}).get("kind") for s in plan.steps]
    assert kinds.count("TRANS_STMT_BEGIN") == 1 and kinds.count("TRANS_STMT_COMMIT") == 1
    assert {s.transaction for s in plan.steps} == {0}


def test_empty_sqlalchemy_url_and_database_url_reaching_env_py(
    db: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("sqlalchemy.url =\n", 'sqlalchemy.url = ""\n'))
    assert _alembic(project, db, "upgrade", "0001").returncode == 0
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv("SAMPLE_URL_FILE", str(seen))
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--database-url", db, "--fail-on", "never"])
    assert r.exit_code == 0, r.output
    assert "skipped 1 applied revision(s) (0001)" in r.stderr
    assert READS in r.stderr
    urls = seen.read_text().split()
    dbname = db.split("dbname=")[1].split()[0]
    assert urls and all(u.startswith("postgresql+psycopg://") and dbname in u for u in urls)
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--range", "0001:head", "--fail-on", "never"])
    assert r.exit_code == 0, r.output  # no URL at all: the dialect is enough offline


def test_env_py_failure_keeps_the_original_exception(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_BROKEN_ENV", "1")
    r = CliRunner().invoke(lint_cmd, ["--alembic"])
    assert r.exit_code == 2, r.output
    assert "RuntimeError: env.py could not import the application's settings" in r.output
    assert "internal error" not in r.output


def test_bad_range_and_foreign_snapshot_are_usage_errors_with_alembic_text(
    project: Path,
) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--range", "0004:0003"])
    assert r.exit_code == 2, r.output
    assert "alembic: Revision 0004 is not an ancestor of revision 0003" in r.output
    assert "internal error" not in r.output
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--range", "nope:head"])
    assert r.exit_code == 2 and "No such revision or branch 'nope'" in r.output, r.output
    from pgwarden.errors import UsageError

    with pytest.raises(UsageError, match="the snapshot's alembic_version is ffff, which is not"):
        read_alembic_sources("alembic.ini", applied=["ffff"])
