"""Protection travels with the stamp; every command decides it with one function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.apply.identity import stamp_database
from pgwarden.backup.restore import Target, check_environment
from pgwarden.errors import Refused, UsageError
from pgwarden.settings import Environment, Settings, is_protected, load_settings
from tests.apply.conftest import plan_of, scalar, write_sql

PROD = Settings(environments={"production": Environment("production", protected=True)})


def pgwarden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in `cwd`, with standard input closed and no database URL in the environment."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PGWARDEN_DATABASE_URL", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def prod(db: str, tmp_path: Path) -> str:
    """A database whose first apply ran with a config declaring production protected."""
    first = write_sql(tmp_path, "CREATE TABLE invoices (id int PRIMARY KEY);", "001.sql")
    result = apply_plan(
        plan_of(first),
        database_url=db,
        settings=PROD,
        policy=GuardPolicy(env="production", yes=True),
    )
    assert result.state == "done"
    return db


def test_the_stamp_records_protection_and_it_holds_without_a_config(
    prod: str, tmp_path: Path
) -> None:
    assert scalar(prod, "SELECT protected FROM pgwarden.target") is True
    laptop = tmp_path / "laptop"  # no pgwarden.toml, no pyproject.toml
    laptop.mkdir()
    drop = write_sql(laptop, "DROP TABLE invoices;", "002_drop.sql")
    journal = ["--journal-file", str(laptop / "j.jsonl")]
    r = pgwarden("apply", str(drop), "--database-url", prod, *journal, cwd=laptop)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stamped as protected environment 'production'" in r.stderr
    assert "stamp records it as protected" in r.stderr
    r = pgwarden("apply", str(drop), "--database-url", prod, "--env", "production", *journal,
                 cwd=laptop)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no terminal to confirm" in r.stderr and "stamp records it as protected" in r.stderr
    assert scalar(prod, "SELECT to_regclass('invoices') IS NOT NULL") is True
    # A config that calls production unprotected does not lift the stamp's protection.
    lax = Settings(environments={"production": Environment("production", protected=False)})
    with pytest.raises(Refused, match="no terminal to confirm"):
        apply_plan(
            plan_of(drop), database_url=prod, settings=lax, policy=GuardPolicy(env="production")
        )
    assert scalar(prod, "SELECT to_regclass('invoices') IS NOT NULL") is True


def test_an_undeclared_environment_is_protected_unless_its_stamp_says_otherwise(
    db: str, tmp_path: Path
) -> None:
    path = write_sql(tmp_path, "CREATE TABLE t (id int);")
    with pytest.raises(Refused, match="not declared in a configuration"):
        apply_plan(plan_of(path), database_url=db, policy=GuardPolicy(env="qa"))
    assert (
        apply_plan(plan_of(path), database_url=db, policy=GuardPolicy(env="qa", yes=True)).state
        == "done"
    )
    assert scalar(db, "SELECT protected FROM pgwarden.target") is True
    with psycopg.connect(db, autocommit=True) as c:  # adopted as unprotected, deliberately
        stamp_database(c, "qa", protected=False, by="test")
    other = write_sql(tmp_path, "CREATE TABLE u (id int);", "002.sql")
    assert apply_plan(plan_of(other), database_url=db, policy=GuardPolicy(env="qa")).state == "done"
    # A stamp from before protection was recorded counts as protected when undeclared.
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("UPDATE pgwarden.target SET protected = NULL")
    third = write_sql(tmp_path, "CREATE TABLE v (id int);", "003.sql")
    with pytest.raises(Refused, match="not declared in a configuration"):
        apply_plan(plan_of(third), database_url=db, policy=GuardPolicy(env="qa"))


def test_backup_restore_decides_protection_with_the_same_function(db: str) -> None:
    target = Target(db, "target", None, (), "qa")  # type: ignore[arg-type]
    assert is_protected("qa", {}) is True
    with pytest.raises(Refused, match="qa"):
        check_environment(target, None, Settings())
    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "qa", protected=False, by="test")
    check_environment(target, None, Settings())  # the stamp says unprotected: like apply
    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "qa", protected=True, by="test")
    declared = Settings(environments={"qa": Environment("qa", protected=False)})
    with pytest.raises(Refused, match="qa"):
        check_environment(target, None, declared)


@pytest.mark.parametrize("name", ["prod\nuction", "staging\r", "qa\x1b[31m", " "])
def test_environment_names_with_control_characters_are_usage_errors(
    db: str, tmp_path: Path, name: str
) -> None:
    path = write_sql(tmp_path, "CREATE TABLE t (id int);")
    with pytest.raises(UsageError, match="environment name"):
        apply_plan(plan_of(path), database_url=db, policy=GuardPolicy(env=name, yes=True))
    assert scalar(db, "SELECT to_regclass('pgwarden.target')") is None
    r = pgwarden("apply", str(path), "--database-url", db, "--env", name, "--yes", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr


def test_control_characters_in_config_keys_and_stamps_are_usage_errors(
    db: str, tmp_path: Path
) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text('[environments."prod\\nuction"]\nprotected = true\n')
    with pytest.raises(UsageError, match="holds a control character"):
        load_settings(config)
    path = write_sql(tmp_path, "CREATE TABLE t (id int);")
    assert (
        apply_plan(plan_of(path), database_url=db, policy=GuardPolicy(env="qa", yes=True)).state
        == "done"
    )
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("UPDATE pgwarden.target SET environment = E'qa\\nproduction'")
    with pytest.raises(UsageError, match=r"the stamp in pgwarden\.target"):
        apply_plan(plan_of(path), database_url=db, policy=GuardPolicy(env="qa", yes=True))


def test_a_stamp_table_from_an_earlier_version_is_upgraded(db: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, "CREATE TABLE t (id int);")
    assert apply_plan(
        plan_of(path),
        database_url=db,
        settings=PROD,
        policy=GuardPolicy(env="production", yes=True),
    ).ok
    with psycopg.connect(db, autocommit=True) as c:  # as pgwarden wrote it before
        c.execute(
            "ALTER TABLE pgwarden.target DROP COLUMN protected, DROP COLUMN data_directory, "
            "DROP COLUMN port"
        )
    other = write_sql(tmp_path, "CREATE TABLE u (id int);", "002.sql")
    with pytest.raises(Refused, match="not declared in a configuration"):  # safe default
        apply_plan(plan_of(other), database_url=db, policy=GuardPolicy(env="production"))
    assert apply_plan(
        plan_of(other),
        database_url=db,
        settings=PROD,
        policy=GuardPolicy(env="production", yes=True),
    ).ok
    assert scalar(db, "SELECT protected AND port IS NOT NULL FROM pgwarden.target") is True


def test_rehearse_on_a_live_target_decides_protection_with_the_same_function(db: str) -> None:
    from pgwarden.rehearse.target import check_not_production

    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "qa", protected=True, by="test")
        declared = {"qa": Environment("qa", protected=False)}
        with pytest.raises(Refused, match="protected environment 'qa'"):
            check_not_production(db, c, declared)  # the stamp travels
        c.execute("UPDATE pgwarden.target SET protected = NULL")  # an older stamp
        with pytest.raises(Refused, match="protected environment 'qa'"):
            check_not_production(db, c, {})  # undeclared: protected
        check_not_production(db, c, declared)
        stamp_database(c, "qa", protected=False, by="test")
        check_not_production(db, c, {})  # the stamp says unprotected
