"""A role that may not read pgwarden's schema (owned by the migration role) gets the
documented refusal or one clear message naming the role, the schema and the fix, never
an internal error; with USAGE and SELECT granted, `pgwarden status` works read-only."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.backfill import BackfillSpec, run_backfill
from pgwarden.apply.cancel import cancel_run
from pgwarden.apply.resume import resume_run
from pgwarden.apply.status import status
from pgwarden.cli import cli
from pgwarden.errors import DatabaseError, Refused
from pgwarden.fleet.status import fleet_status
from pgwarden.fleet.targets import Target as FleetTarget
from pgwarden.pg.stamp import stamped_protection
from pgwarden.settings import Settings
from tests.access.test_enforce import Target, target

__all__ = ["target"]


def _migrated(target: Target, tmp_path: Path) -> None:
    """The documented flow: the migration role applies first and owns schema pgwarden."""
    path = tmp_path / "001.sql"
    path.write_text("CREATE TABLE t (id int);\n")
    result = apply_plan(
        commands.load_plan([path]),
        database_url=target.dsn(target.migrator),
        policy=GuardPolicy(env="production", yes=True),
        options=RunOptions(),
        settings=target.settings(),
    )
    assert result.state == "done"


def _config(target: Target, tmp_path: Path) -> str:
    path = tmp_path / "pgwarden.toml"
    path.write_text(
        "[environments.production]\nprotected = true\n"
        "[environments.production.roles]\n"
        f'migration = "{target.migrator}"\nreadonly = ["{target.dev}"]\n'
        'break_glass = ["postgres"]\nsuperusers = ["postgres"]\n'
    )
    return str(path)


def _refused(target: Target, tmp_path: Path, *args: str) -> str:
    """The output of `pgwarden <args>` as the developer on production, protected with a role
    policy: the documented role refusal (exit 1)."""
    url, config = target.cluster.url(target.db, target.dev), _config(target, tmp_path)
    out = CliRunner().invoke(
        cli,
        [*args, "--database-url", url, "--env", "production", "--yes", "--config", config],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 1, out.output
    assert f"connected as role {target.dev}, but only the migration role" in out.output
    return out.output


def _unreadable(exc: DatabaseError, role: str, owner: str) -> None:
    assert f"role {role} cannot read schema pgwarden (owned by {owner})" in exc.message
    assert "GRANT USAGE ON SCHEMA pgwarden" in str(exc.hint)
    assert exc.exit_code == 2


def test_another_role_gets_the_role_refusal_once_the_migration_role_owns_the_schema(
    target: Target, tmp_path: Path
) -> None:
    _migrated(target, tmp_path)
    (tmp_path / "002.sql").write_text("CREATE TABLE u (id int);\n")
    out = _refused(target, tmp_path, "apply", str(tmp_path / "002.sql"))
    assert "internal error" not in out
    assert not target.exists("public.u")


def test_backfill_by_another_role_gets_the_role_refusal(target: Target, tmp_path: Path) -> None:
    _migrated(target, tmp_path)
    out = _refused(target, tmp_path, "backfill", "--table", "t", "--set", "id = 1")
    assert "cannot read schema" not in out


def test_status_by_a_role_without_usage_names_the_schema_and_the_grant(
    target: Target, tmp_path: Path
) -> None:
    _migrated(target, tmp_path)
    with pytest.raises(DatabaseError) as exc:
        status(target.dsn(target.dev))
    _unreadable(exc.value, target.dev, target.migrator)
    out = CliRunner().invoke(
        cli,
        [
            "status",
            "--database-url",
            target.cluster.url(target.db, target.dev),
            "--config",
            _config(target, tmp_path),
        ],
    )
    assert out.exit_code == 2, out.output
    assert "internal error" not in out.output
    assert "cannot read schema pgwarden" in out.output


def test_status_works_read_only_with_usage_and_select_granted(
    target: Target, tmp_path: Path
) -> None:
    _migrated(target, tmp_path)
    with psycopg.connect(target.dsn(target.migrator), autocommit=True) as c:
        dev = sql.Identifier(target.dev)
        c.execute(sql.SQL("GRANT USAGE ON SCHEMA pgwarden TO {}").format(dev))
        with pytest.raises(DatabaseError) as exc:  # USAGE alone: the tables are still closed
            status(target.dsn(target.dev))
        _unreadable(exc.value, target.dev, target.migrator)
        c.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA pgwarden TO {}").format(dev))
    report = status(target.dsn(target.dev))
    assert report.stamp is not None and report.stamp.environment == "production"
    assert [r.state for r in report.runs] == ["done"]


def test_resume_cancel_and_an_unprotected_apply_say_the_schema_cannot_be_read(
    target: Target, tmp_path: Path
) -> None:
    _migrated(target, tmp_path)
    dev = target.dsn(target.dev)
    with pytest.raises(Refused):  # the role check comes first on the protected environment
        resume_run(
            database_url=dev,
            policy=GuardPolicy(env="production", yes=True),
            settings=target.settings(),
        )
    with pytest.raises(DatabaseError) as exc:
        cancel_run(dev)
    _unreadable(exc.value, target.dev, target.migrator)
    # no role policy: nothing refuses the role, so reading the stamp must say why it fails
    path = tmp_path / "003.sql"
    path.write_text("CREATE TABLE v (id int);\n")
    with pytest.raises(DatabaseError) as exc:
        apply_plan(
            commands.load_plan([path]),
            database_url=dev,
            policy=GuardPolicy(env="production", yes=True),
            options=RunOptions(),
            settings=Settings(),
        )
    _unreadable(exc.value, target.dev, target.migrator)
    assert not target.exists("public.v")


def test_backfill_fleet_status_and_the_stamp_check_say_it_too(
    target: Target, tmp_path: Path
) -> None:
    _migrated(target, tmp_path)
    dev = target.dsn(target.dev)
    with psycopg.connect(dev, autocommit=True) as c:  # a table of the developer's own
        c.execute("CREATE TABLE notes (id bigint PRIMARY KEY, done bool)")
        c.execute("INSERT INTO notes SELECT g, false FROM generate_series(1, 10) g")
    with pytest.raises(DatabaseError) as exc:  # no policy in the way: the journal is
        run_backfill(dev, BackfillSpec(table="notes", set_sql="done = true"))
    _unreadable(exc.value, target.dev, target.migrator)
    with pytest.raises(DatabaseError) as exc:  # rehearse's and restore's stamp check
        stamped_protection(dev)
    _unreadable(exc.value, target.dev, target.migrator)
    fleet = fleet_status("f", [FleetTarget("shop", dev)])
    error = fleet.targets[0].error
    assert error is not None
    assert f"role {target.dev} cannot read schema pgwarden" in error
