"""Target identity guard: stamps, mismatching --env, protected environments, data loss."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.identity import Identity, stamp_database
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


@pytest.fixture
def bare(db: str) -> str:
    """The sample shop schema, never stamped by pgwarden."""
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=2_000, accounts_rows=100)
    return db


@pytest.fixture
def prod(bare: str) -> str:
    """The sample shop, adopted as the protected environment production."""
    with psycopg.connect(bare, autocommit=True) as c:
        stamp_database(c, "production", protected=True, by="tests")
    return bare


def _runs(dsn: str) -> object:
    return scalar(dsn, "SELECT count(*) FROM pgwarden.runs")


def test_adopting_stamps_and_a_different_env_is_refused_before_any_statement(
    bare: str, tmp_path: Path
) -> None:
    shop = bare
    ok = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;", "001.sql")
    apply_plan(
        plan_of(ok),
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True, restamp=True),
    )
    assert scalar(shop, "SELECT environment FROM pgwarden.target") == "production"
    assert scalar(
        shop,
        "SELECT system_identifier = (SELECT system_identifier::text FROM pg_control_system()) "
        "AND database_oid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "FROM pgwarden.target",
    )
    drop = write_sql(tmp_path, "DROP TABLE invoices;", "002.sql")
    with pytest.raises(Refused, match=r"--env staging but database .* is stamped 'production'"):
        apply_plan(
            plan_of(drop), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    assert scalar(shop, "SELECT count(*) FROM invoices") == 2_000
    assert _runs(shop) == 1


def test_drop_table_on_protected_env_needs_a_backup_or_accepted_data_loss(
    prod: str, tmp_path: Path
) -> None:
    shop = prod
    drop = write_sql(tmp_path, "DROP TABLE settings;")
    with pytest.raises(Refused, match="destructive steps on protected environment"):
        apply_plan(
            plan_of(drop),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="production", yes=True),
        )
    assert scalar(shop, "SELECT count(*) FROM settings") == 2
    assert scalar(shop, "SELECT to_regclass('pgwarden.runs')") is None  # nothing ran at all
    # A dry run previews the plan (no confirmation needed) and says what would be refused.
    preview = apply_plan(
        plan_of(drop),
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(env="production"),
        options=RunOptions(dry_run=True),
    )
    assert preview.state == "dry-run" and preview.steps[0].point_of_no_return
    assert len(preview.warnings) == 1
    assert "would be refused" in preview.warnings[0] and "backup verify" in preview.warnings[0]
    assert scalar(shop, "SELECT count(*) FROM settings") == 2

    result = apply_plan(
        plan_of(drop),
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(
            env="production", yes=True, accept_data_loss="settings moved to the config service"
        ),
    )
    assert result.state == "done"
    assert scalar(shop, "SELECT to_regclass('settings')") is None
    assert scalar(shop, "SELECT accept_data_loss FROM pgwarden.runs") == (
        "settings moved to the config service"
    )
    assert scalar(shop, "SELECT point_of_no_return FROM pgwarden.steps") is True


def test_a_verified_backup_replaces_the_data_loss_acknowledgement(
    prod: str, tmp_path: Path
) -> None:
    shop = prod
    seen: list[Identity] = []

    def backup(ident: Identity) -> str | None:
        seen.append(ident)
        return "backup-123"

    drop = write_sql(tmp_path, "DROP TABLE settings;")
    result = apply_plan(
        plan_of(drop),
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True, backup_check=backup),
    )
    assert result.state == "done" and result.backup == "backup-123"
    assert seen and seen[0].database_name == shop.split("dbname=")[1].split()[0]


def test_protected_env_needs_a_typed_confirmation(prod: str, tmp_path: Path) -> None:
    shop = prod
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(Refused, match="no terminal to confirm"):
        apply_plan(
            plan_of(path),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="production"),
        )
    with pytest.raises(Refused, match="did not match"):
        apply_plan(
            plan_of(path),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="production", confirm=lambda name: name + "x"),
        )
    result = apply_plan(
        plan_of(path),
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", confirm=lambda name: name),
    )
    assert result.state == "done"


def test_protected_env_must_be_named_and_undeclared_envs_are_typos(
    bare: str, tmp_path: Path
) -> None:
    shop = bare
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(UsageError, match="not declared"):
        apply_plan(
            plan_of(path), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="prod")
        )
    with pytest.raises(UsageError, match="no --env given"):
        apply_plan(
            plan_of(path), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env=None)
        )
    apply_plan(
        plan_of(path),
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True, restamp=True),
    )
    other = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN other text;", "002.sql")
    with pytest.raises(Refused, match="must be named explicitly"):
        apply_plan(
            plan_of(other),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env=None, yes=True),
        )


def test_a_copy_carrying_another_databases_stamp_is_refused(
    shop: str, tmp_path: Path, pg_cluster
) -> None:
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    apply_plan(
        plan_of(path), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="staging")
    )
    name = shop.split("dbname=")[1].split()[0]
    copy = pg_cluster.create_database(name + "_copy", template=name)
    other = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN other text;", "002.sql")
    with pytest.raises(Refused, match="it is a copy or a restore"):
        apply_plan(
            plan_of(other), database_url=copy, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    result = apply_plan(
        plan_of(other),
        database_url=copy,
        settings=SETTINGS,
        policy=GuardPolicy(env="staging", restamp=True),
    )
    assert result.state == "done"


def test_the_backup_catalogue_decides_destructive_steps(prod: str, tmp_path: Path) -> None:
    """A real backup, verified by restoring it, lets a DROP through; an unverified one doesn't."""
    shop = prod
    from dataclasses import replace

    from pgwarden.backup import api as backup

    catalogue = tmp_path / "backups"
    cfg = replace(SETTINGS, backup_catalogue=str(catalogue))
    manifest = backup.create(shop, catalogue=str(catalogue))
    drop = write_sql(tmp_path, "DROP TABLE settings;")
    with pytest.raises(Refused, match="without a verified backup"):  # created, not verified
        apply_plan(
            plan_of(drop),
            database_url=shop,
            settings=cfg,
            policy=GuardPolicy(env="production", yes=True),
        )
    assert scalar(shop, "SELECT count(*) FROM settings") == 2

    backup.verify(manifest.id, catalogue=str(catalogue))
    stale = replace(cfg, backup_max_age_hours=1e-9)  # verified, but older than the policy age
    with pytest.raises(Refused, match="without a verified backup"):
        apply_plan(
            plan_of(drop),
            database_url=shop,
            settings=stale,
            policy=GuardPolicy(env="production", yes=True),
        )

    result = apply_plan(
        plan_of(drop),
        database_url=shop,
        settings=cfg,
        policy=GuardPolicy(env="production", yes=True),
    )
    assert result.state == "done"
    assert result.backup == manifest.id
    assert scalar(shop, "SELECT to_regclass('settings')") is None


def test_writing_a_table_the_run_creates_loses_no_data(prod: str, tmp_path: Path) -> None:
    # its rows can only be the ones the run wrote: no backup or acknowledgement needed
    new = write_sql(
        tmp_path,
        "CREATE TABLE ledger (id int PRIMARY KEY, v int);\n"
        "INSERT INTO ledger VALUES (1, 0);\nUPDATE ledger SET v = 1;\nDELETE FROM ledger;\n",
    )
    result = apply_plan(
        plan_of(new),
        database_url=prod,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True),
    )
    assert result.state == "done"
    # once it exists (an earlier run created it), the same UPDATE is a data loss again
    again = write_sql(tmp_path, "UPDATE ledger SET v = 2;\n", name="002.sql")
    with pytest.raises(Refused, match="destructive steps on protected environment"):
        apply_plan(
            plan_of(again),
            database_url=prod,
            settings=SETTINGS,
            policy=GuardPolicy(env="production", yes=True),
        )
