"""Apply's role check (#16.4): only the migration role changes a protected environment;
a break-glass role runs with a reason and is recorded; a missing policy is said."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden import commands
from pgwarden.apply.api import ApplyResult, GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.role_gate import gate_command
from pgwarden.errors import Refused, UsageError
from pgwarden.events import BreakGlass, Event, NoRolePolicy
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings

_ids = itertools.count()


@dataclass
class Target:
    cluster: Cluster
    db: str
    migrator: str
    dev: str

    def dsn(self, user: str = "postgres", role: str | None = None) -> str:
        dsn = self.cluster.dsn(self.db, user)
        return dsn if role is None else f"{dsn} options='-c role={role}'"

    def settings(self, *, policy: bool = True, protected: bool = True) -> Settings:
        roles = RolePolicy(
            migration=self.migrator,
            application=(),
            readonly=(self.dev,),
            break_glass=("postgres",),
            superusers=("postgres",),
        )
        env = Environment("production", protected, roles if policy else None)
        return Settings(environments={"production": env})

    def exists(self, name: str) -> bool:
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            row = c.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
        return bool(row and row[0])


@pytest.fixture
def target(pg_cluster: Cluster) -> Iterator[Target]:
    p = f"en{os.getpid()}_{next(_ids)}"
    t = Target(pg_cluster, f"{p}_db", f"{p}_migrator", f"{p}_dev")
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
        for role in (t.migrator, t.dev):
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        c.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(t.db), sql.Identifier(t.migrator)
            )
        )
        # the developer could create tables: only the role check stops it
        c.execute(
            sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
                sql.Identifier(t.db), sql.Identifier(t.dev)
            )
        )
    with psycopg.connect(t.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(t.dev)))
    yield t
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(t.db)))
        for role in (t.migrator, t.dev):
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _apply(
    tmp_path: Path, dsn: str, settings: Settings, events: list[Event], **guard: object
) -> ApplyResult:
    path = tmp_path / "001.sql"
    path.write_text("CREATE TABLE t (id int);\n")
    plan = commands.load_plan([path])
    dry_run = bool(guard.pop("dry_run", False))

    return apply_plan(
        plan,
        database_url=dsn,
        policy=GuardPolicy(env="production", yes=True, **guard),  # type: ignore[arg-type]
        options=RunOptions(dry_run=dry_run),
        settings=settings,
        observer=events.append,
    )


def test_a_role_other_than_the_migration_role_is_refused_before_anything_runs(
    target: Target, tmp_path: Path
) -> None:
    with pytest.raises(Refused) as exc:
        _apply(tmp_path, target.dsn(target.dev), target.settings(), [])
    assert f"connected as role {target.dev}" in exc.value.message
    assert f"only the migration role {target.migrator}" in exc.value.message
    assert exc.value.exit_code == 1
    assert not target.exists("public.t")
    assert not target.exists("pgwarden.target")  # not even stamped


def test_the_role_set_in_the_url_options_is_the_one_checked(target: Target, tmp_path: Path) -> None:
    with pytest.raises(Refused) as exc:
        _apply(tmp_path, target.dsn("postgres", role=target.dev), target.settings(), [])
    assert f"role {target.dev} (session user postgres)" in exc.value.message
    events: list[Event] = []
    result = _apply(
        tmp_path, target.dsn("postgres", role=target.migrator), target.settings(), events
    )
    assert result.state == "done"
    assert target.exists("public.t")
    assert not [e for e in events if isinstance(e, BreakGlass | NoRolePolicy)]


def test_break_glass_needs_a_reason_then_runs_loudly_and_is_recorded(
    target: Target, tmp_path: Path
) -> None:
    with pytest.raises(Refused) as exc:
        _apply(tmp_path, target.dsn(), target.settings(), [])
    assert "a break-glass role" in exc.value.message and "--break-glass" in str(exc.value.hint)
    with pytest.raises(UsageError):
        _apply(tmp_path, target.dsn(), target.settings(), [], break_glass="  ")
    events: list[Event] = []
    result = _apply(tmp_path, target.dsn(), target.settings(), events, break_glass="INC-7 hotfix")
    assert result.state == "done"
    glass = [e for e in events if isinstance(e, BreakGlass)]
    assert len(glass) == 1
    assert (glass[0].current_user, glass[0].reason, glass[0].expected) == (
        "postgres",
        "INC-7 hotfix",
        target.migrator,
    )
    with psycopg.connect(target.dsn(), autocommit=True) as c:
        rows = c.execute(
            "SELECT run_id, command, session_user_name, current_user_name, reason, os_user <> '' "
            "FROM pgwarden.break_glass"
        ).fetchall()
        kinds = c.execute(
            "SELECT kind FROM pgwarden.events WHERE run_id = %s AND kind = 'break_glass'",
            [result.run_id],
        ).fetchall()
    assert rows == [(result.run_id, "apply", "postgres", "postgres", "INC-7 hotfix", True)]
    assert len(kinds) == 1
    # the journal the break-glass run created belongs to the migration role: it applies next
    (tmp_path / "001.sql").write_text("CREATE TABLE t2 (id int);\n")
    path = tmp_path / "001.sql"
    after = apply_plan(
        commands.load_plan([path]),
        database_url=target.dsn(target.migrator),
        policy=GuardPolicy(env="production", yes=True),
        settings=target.settings(),
    )
    assert after.state == "done" and target.exists("public.t2")
    # the migration role itself needs no break glass, and may not claim it
    with pytest.raises(UsageError):
        _apply(tmp_path, target.dsn(target.migrator), target.settings(), [], break_glass="x")


def test_a_protected_environment_without_a_policy_says_so_once_per_run(
    target: Target, tmp_path: Path
) -> None:
    events: list[Event] = []
    result = _apply(tmp_path, target.dsn(target.dev), target.settings(policy=False), events)
    assert result.state == "done"
    said = [e for e in events if isinstance(e, NoRolePolicy)]
    assert len(said) == 1 and said[0].current_user == target.dev
    # an unprotected environment is not checked at all
    events.clear()
    (tmp_path / "001.sql").unlink()
    settings = target.settings(protected=False)
    with psycopg.connect(target.dsn(), autocommit=True) as c:
        c.execute("UPDATE pgwarden.target SET protected = false")
    path = tmp_path / "002.sql"
    path.write_text("CREATE TABLE u (id int);\n")
    apply_plan(
        commands.load_plan([path]),
        database_url=target.dsn(target.dev),
        policy=GuardPolicy(env="production", yes=True),
        settings=settings,
        observer=events.append,
    )
    assert target.exists("public.u")
    assert not [e for e in events if isinstance(e, BreakGlass | NoRolePolicy)]
    # ... and --break-glass there is an error, never silently ignored (nothing runs)
    path = tmp_path / "003.sql"
    path.write_text("CREATE TABLE v (id int);\n")
    with pytest.raises(UsageError, match="is not protected"):
        apply_plan(
            commands.load_plan([path]),
            database_url=target.dsn(),
            policy=GuardPolicy(env="production", yes=True, break_glass="INC-1"),
            settings=settings,
        )
    assert not target.exists("public.v")


def test_a_dry_run_reports_the_refusal_instead_of_raising(target: Target, tmp_path: Path) -> None:
    result = _apply(tmp_path, target.dsn(target.dev), target.settings(), [], dry_run=True)
    warnings = result.warnings
    assert any(f"only the migration role {target.migrator}" in w for w in warnings), warnings


def test_backfill_gate_refuses_and_records_break_glass(target: Target) -> None:
    env = Environment("production", True)
    with pytest.raises(Refused):
        gate_command(
            target.dsn(target.dev), env, target.settings(), break_glass=None, command="backfill"
        )
    seen: list[Event] = []
    gate_command(
        target.dsn(),
        env,
        target.settings(),
        break_glass="fix rows",
        command="backfill",
        observer=seen.append,
    )
    assert [type(e) for e in seen] == [BreakGlass]
    with psycopg.connect(target.dsn(), autocommit=True) as c:
        row = c.execute("SELECT run_id, command, reason FROM pgwarden.break_glass").fetchone()
    assert row == (None, "backfill", "fix rows")


def test_the_wrong_role_is_refused_before_the_confirmation_is_asked(
    target: Target, tmp_path: Path
) -> None:
    path = tmp_path / "001.sql"
    path.write_text("CREATE TABLE t (id int);\n")

    def confirm(name: str) -> str:
        raise AssertionError(f"asked to confirm {name} before the role check")

    with pytest.raises(Refused) as exc:
        apply_plan(
            commands.load_plan([path]),
            database_url=target.dsn(target.dev),
            policy=GuardPolicy(env="production", yes=False, confirm=confirm),
            settings=target.settings(),
        )
    assert f"only the migration role {target.migrator}" in exc.value.message
