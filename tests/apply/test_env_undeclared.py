"""`--env NAME` that the configuration does not declare (issue 14 point 9).

With environments declared, an undeclared name runs only when it is what the
database's stamp records; otherwise it is refused (exit 2) naming the closest
declared environment and the stamp's. With none declared, any name goes
(protected unless its stamp says otherwise), as before.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.apply.identity import stamp_database
from pgwarden.demo import create_sample_schema
from pgwarden.errors import Refused, UsageError
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import plan_of, scalar, write_sql

SETTINGS = Settings(
    environments={
        "production": Environment("production", protected=True),
        "staging": Environment("staging"),
    }
)
PGWARDEN = str(Path(sys.executable).parent / "pgwarden")


def _shop(db: str, stamp: tuple[str, bool] | None) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=200, accounts_rows=20)
        if stamp is not None:
            stamp_database(c, stamp[0], protected=stamp[1], by="tests")
    return db


def _has_note(dsn: str) -> bool:
    q = (
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'settings' AND column_name = 'note'"
    )
    return scalar(dsn, q) == 1


def test_undeclared_env_that_matches_the_stamp_runs(db: str, tmp_path: Path) -> None:
    shop = _shop(db, ("qa", False))  # adopted as qa by a configuration that declared it
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    result = apply_plan(
        plan_of(path), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="qa")
    )
    assert result.state == "done" and result.environment == "qa"
    assert _has_note(shop)


def test_undeclared_env_stamped_protected_stays_protected(db: str, tmp_path: Path) -> None:
    shop = _shop(db, ("qa", True))
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(Refused, match="protected"):
        apply_plan(
            plan_of(path), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="qa")
        )
    assert not _has_note(shop)


def test_undeclared_env_not_in_the_stamp_is_refused_with_the_names(db: str, tmp_path: Path) -> None:
    shop = _shop(db, ("qa", False))
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(UsageError) as err:
        apply_plan(
            plan_of(path),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="prodution", yes=True),
        )
    text = f"{err.value} {err.value.hint}"
    assert "declared: production, staging" in text
    assert "stamp says 'qa'" in text
    assert "did you mean --env production" in text
    assert not _has_note(shop)
    # a restamp does not make an undeclared name acceptable either
    with pytest.raises(UsageError, match="not declared"):
        apply_plan(
            plan_of(path),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="qa2", yes=True, restamp=True),
        )
    assert scalar(shop, "SELECT environment FROM pgwarden.target") == "qa"


def test_undeclared_env_without_a_stamp_is_refused(db: str, tmp_path: Path) -> None:
    shop = _shop(db, None)
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(UsageError) as err:
        apply_plan(
            plan_of(path),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="stagin", yes=True, restamp=True),
        )
    text = f"{err.value} {err.value.hint}"
    assert "has no pgwarden stamp" in text and "did you mean --env staging" in text
    assert scalar(shop, "SELECT to_regclass('pgwarden.target') IS NULL") is True


def test_no_environments_declared_keeps_any_name_protected(db: str, tmp_path: Path) -> None:
    shop = _shop(db, None)
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(Refused, match="not declared in a configuration"):
        apply_plan(
            plan_of(path),
            database_url=shop,
            settings=Settings(),
            policy=GuardPolicy(env="anything", restamp=True),
        )
    apply_plan(
        plan_of(path),
        database_url=shop,
        settings=Settings(),
        policy=GuardPolicy(env="anything", restamp=True, yes=True),
    )
    assert _has_note(shop)


def test_cli_exit_2_names_the_declared_and_the_stamped(db: str, tmp_path: Path) -> None:
    shop = _shop(db, ("qa", False))
    (tmp_path / "pgwarden.toml").write_text(
        "[environments.production]\nprotected = true\n[environments.staging]\nprotected = false\n"
    )
    write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    r = subprocess.run(
        [PGWARDEN, "apply", "001.sql", "--database-url", shop, "--env", "staging2", "--yes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "declared: production, staging" in out and "'qa'" in out
    assert "Traceback" not in out
    r = subprocess.run(
        [PGWARDEN, "apply", "001.sql", "--database-url", shop, "--env", "qa"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert _has_note(shop)
