"""Config found like other tools: walking up to the repository root; unknown keys refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgwarden.errors import ConfigError
from pgwarden.settings import find_config, load_settings


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", "lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_config_found_in_a_parent_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    deep = repo / "migrations" / "v2"
    deep.mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / "pyproject.toml").write_text('[tool.pgwarden]\nfail_on = "warning"\n')
    monkeypatch.chdir(deep)
    settings = load_settings()
    assert settings.fail_on == "warning"
    assert settings.source is not None and settings.source.endswith("pyproject.toml")


def test_nearest_pgwarden_toml_wins_and_foreign_pyproject_is_skipped(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    app = repo / "app"
    app.mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / "pgwarden.toml").write_text("pg_version = 16\n")
    (app / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")  # not ours
    found = find_config(app)
    assert found is not None and found[0] == repo / "pgwarden.toml"


def test_walk_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "pgwarden.toml").write_text("pg_version = 16\n")  # outside the repository
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    assert find_config(repo / "sub") is None
    assert find_config(tmp_path / "repo" / "..") is not None


@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        ("fail_onn = 'error'\n", "fail_onn", "fail_on"),
        ("[backup]\ncatalog = 'b/'\n", "backup.catalog", "backup.catalogue"),
        (
            "[environments.production]\nprotect = true\n",
            "environments.production.protect",
            "environments.production.protected",
        ),
        ("dml_max_row = 5\n", "dml_max_row", "dml_max_rows"),
    ],
)
def test_unknown_key_names_the_closest_valid_one(
    tmp_path: Path, text: str, key: str, suggestion: str
) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert f"unknown key `{key}`" in err.value.message
    assert err.value.hint == f"did you mean `{suggestion}`?"


def test_unknown_key_is_a_usage_error_on_the_command_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "db").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / "pyproject.toml").write_text("[tool.pgwarden]\nignor = ['PW120']\n")
    (repo / "db" / "001.sql").write_text("CREATE TABLE t (id int);\n")
    r = _lint(repo / "db", "001.sql")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "unknown key `ignor`" in r.stderr and "did you mean `ignore`?" in r.stderr


def test_dml_limits_are_read_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text("dml_max_rows = 5000\ndml_max_share = 0.25\n")
    s = load_settings(config)
    assert (s.dml_max_rows, s.dml_max_share) == (5000, 0.25)
    config.write_text("dml_max_share = 2\n")
    with pytest.raises(ConfigError):
        load_settings(config)


def test_every_documented_table_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text(
        'pg_version = 16\nfile_transaction = true\nfail_on = "warning"\nignore = ["PW120"]\n'
        "require_rehearsed = false\ndml_max_rows = 1000\ndml_max_share = 0.2\n"
        "[environments.production]\nprotected = true\n"
        '[backup]\ncatalogue = "b/"\nmax_age_hours = 12\n'
        '[[ignore_sources]]\npath = "*/site-packages/*"\nreason = "third-party"\n'
    )
    s = load_settings(config)
    assert s.environments["production"].protected and s.backup_catalogue == "b/"
