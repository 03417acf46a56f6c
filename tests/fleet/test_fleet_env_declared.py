"""`fleet apply|resume --env NAME` with a name the configuration does not declare (a typo,
the wrong config) is refused before anything connects, as `pgwarden apply` refuses it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.identity import stamp_database
from tests.fleet.conftest import cli, has_column


def test_an_undeclared_env_is_refused_before_any_target_or_registry_is_touched(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--env prod` where the settings declare `production`: exit 2 with apply's message
    (not declared, the declared ones, the closest), no rollout journal, no run on the
    target; a fleet whose registry is unreachable gets the same refusal (the check comes
    before the registry is read). The declared name then rolls out."""
    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "production", protected=True, by="tests")
        c.execute("CREATE TABLE accounts (id int)")
        c.execute("INSERT INTO accounts VALUES (1)")
    monkeypatch.setenv("TYPO_DB", db)
    journal = tmp_path / "j"
    (tmp_path / "pgwarden.toml").write_text(
        "[environments.production]\nprotected = true\n"
        "[environments.staging]\nprotected = false\n"
        f'[fleet.p]\njournal_dir = "{journal}"\ntargets = [{{ name = "a", dsn_env = "TYPO_DB" }}]\n'
        f'[fleet.r]\njournal_dir = "{journal}"\n'
        'registry = { dsn = "postgresql://nobody@127.0.0.1:1/registry", '
        'query = "SELECT name, dsn FROM tenants" }\n'
    )
    (tmp_path / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN x int;\n")
    runs = [
        ("fleet", "apply", "001.sql", "--fleet", "p", "--env", "prod", "--yes"),
        ("fleet", "apply", "001.sql", "--fleet", "p", "--env", "prod", "--dry-run"),
        ("fleet", "resume", "--fleet", "p", "--env", "prod", "--yes"),
        ("fleet", "apply", "001.sql", "--fleet", "r", "--env", "prod", "--yes"),
    ]
    for args in runs:
        r = cli(tmp_path, *args)
        said = r.stdout + r.stderr
        assert r.returncode == 2, (args, said)
        assert "--env prod is not declared in the configuration" in r.stderr, (args, said)
        assert "declared: production, staging" in r.stderr, (args, said)
        assert "did you mean --env production?" in r.stderr, (args, said)
        assert "rollout" not in said and "registry" not in said, (args, said)
    assert not journal.exists()
    assert not has_column(db, "x")
    with psycopg.connect(db) as c:
        row = c.execute("SELECT to_regclass('pgwarden.runs') IS NULL").fetchone()
        assert row == (True,)  # no apply ever started there

    done = cli(
        tmp_path, "fleet", "apply", "001.sql", "--fleet", "p", "--env", "production", "--yes"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert has_column(db, "x")
