"""Hints name a config table as the config file in use spells it.

"declare it under [tool.pgwarden.environments]" was shown to pgwarden.toml users,
whose file takes `[environments]`; writing `[tool.pgwarden...]` there then failed
with "unknown key `tool`". pyproject.toml -> `[tool.pgwarden.X]`, pgwarden.toml ->
`[X]`, no config file -> both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pgwarden.events import NoRolePolicy
from pgwarden.pg.cluster import Cluster
from pgwarden.report.events import render
from pgwarden.settings import config_table
from tests.fixtures.pg import new_database
from tests.fixtures.run import pgwarden

ENVIRONMENTS = {
    "pgwarden.toml": "[environments.staging]\nprotected = false\n",
    "pyproject.toml": "[tool.pgwarden.environments.staging]\nprotected = false\n",
}


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "300"}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        env.pop(var, None)
    return pgwarden(*args, cwd=cwd, env=env)


def _project(tmp_path: Path, config: str | None, text: str = "") -> Path:
    """A project folder (a repository root: the config search stops there)."""
    (tmp_path / ".git").mkdir()
    if config is not None:
        (tmp_path / config).write_text(text)
    return tmp_path


def test_config_table_spelling() -> None:
    assert config_table("environments", "pyproject.toml") == (
        "[tool.pgwarden.environments] in pyproject.toml"
    )
    assert config_table("environments", "app/pgwarden.toml") == (
        "[environments] in app/pgwarden.toml"
    )
    assert config_table("environments", "ci.toml") == "[environments] in ci.toml"  # --config
    assert config_table("notify.webhooks", "pyproject.toml", array=True, named=False) == (
        "[[tool.pgwarden.notify.webhooks]]"
    )
    assert config_table("backup", None) == (
        "[backup] in pgwarden.toml (or [tool.pgwarden.backup] in pyproject.toml)"
    )


@pytest.mark.parametrize(
    ("config", "table"),
    [
        ("pgwarden.toml", "[environments] in pgwarden.toml"),
        ("pyproject.toml", "[tool.pgwarden.environments] in pyproject.toml"),
    ],
)
def test_an_undeclared_env_names_the_table_of_the_file_in_use(
    config: str, table: str, tmp_path: Path, pg_cluster: Cluster
) -> None:
    cwd = _project(tmp_path, config, ENVIRONMENTS[config])
    (cwd / "001.sql").write_text("CREATE TABLE invoices (id int PRIMARY KEY);\n")
    url = new_database(pg_cluster)
    r = _run(cwd, "apply", "001.sql", "--database-url", url, "--env", "stagin")
    assert r.returncode == 2, r.stderr
    assert "--env stagin is not declared in the configuration" in r.stderr
    assert f"or declare it under {table}" in r.stderr
    if config == "pgwarden.toml":
        assert "tool.pgwarden" not in r.stderr


@pytest.mark.parametrize(
    ("config", "table"),
    [
        ("pgwarden.toml", "declare it as [fleet.tenants] in pgwarden.toml"),
        ("pyproject.toml", "declare it as [tool.pgwarden.fleet.tenants] in pyproject.toml"),
        (None, "[fleet.tenants] in pgwarden.toml (or [tool.pgwarden.fleet.tenants] in pyproject"),
    ],
)
def test_a_missing_fleet_names_the_table_of_the_file_in_use(
    config: str | None, table: str, tmp_path: Path
) -> None:
    cwd = _project(tmp_path, config, ENVIRONMENTS.get(config or "", ""))
    (cwd / "m").mkdir()
    (cwd / "m" / "001.sql").write_text("CREATE TABLE invoices (id int PRIMARY KEY);\n")
    r = _run(cwd, "fleet", "apply", "m/", "--fleet", "tenants", "--env", "staging")
    assert r.returncode == 2, r.stderr
    assert "no fleet 'tenants' is configured" in r.stderr
    assert table in r.stderr


def test_pyproject_spelling_in_pgwarden_toml_says_how_to_write_it(tmp_path: Path) -> None:
    cwd = _project(tmp_path, "pgwarden.toml", ENVIRONMENTS["pyproject.toml"])
    (cwd / "001.sql").write_text("SELECT 1;\n")
    r = _run(cwd, "lint", "001.sql")
    assert r.returncode == 2, r.stderr
    assert "unknown key `tool`" in r.stderr
    assert "write [environments], not [tool.pgwarden.environments]" in r.stderr


def test_no_role_policy_warning_names_the_table_of_the_file_in_use() -> None:
    def shown(config: str | None) -> str:
        event = NoRolePolicy(environment="prod", current_user="app", config=config)
        return " ".join(t.plain for t in render(event))

    assert "declare [environments.prod.roles] in pgwarden.toml so" in shown("pgwarden.toml")
    assert "declare [tool.pgwarden.environments.prod.roles] in pyproject.toml" in shown(
        "pyproject.toml"
    )
