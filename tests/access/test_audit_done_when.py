"""Issue #16's done-when, through the CLI as a team runs it, on every server version.

A database set up the way small teams really are: the application connects as
the owner of its tables, a developer role is a member of that owner role,
PUBLIC may CREATE in schema public (granted: PostgreSQL 15 removed the
default), and a default-privileges grant gives a reporting role INSERT and
UPDATE on tomorrow's tables. The audit names every role that can drop or
write and why; `--fix-plan` then `pgwarden apply` (as the declared
break-glass superuser) brings it to the policy while the application still
reads and writes; a DROP as the developer is denied; a second audit is clean.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import errors as pge
from psycopg import sql

from pgwarden.cli import cli
from pgwarden.pg.cluster import Cluster

_ids = itertools.count()


def audit(*args: str) -> Result:
    """`pgwarden audit` in this process (a second each saved against a subprocess)."""
    return CliRunner().invoke(cli, ["audit", *args], env={"COLUMNS": "200"})


def pgwarden(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PGWARDEN_DATABASE_URL", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={**env, "COLUMNS": "200"},
    )


class Team:
    """Roles and a database on a shared cluster, named so tests never collide."""

    def __init__(self, cluster: Cluster, prefix: str) -> None:
        self.cluster = cluster
        self.p = prefix
        self.migrator, self.app, self.dev, self.report = (
            f"{prefix}_{n}" for n in ("migrator", "app", "dev", "report")
        )
        self.db = f"{prefix}_shop"

    def dsn(self, user: str = "postgres") -> str:
        return self.cluster.dsn(self.db, user)

    def setup(self) -> None:
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as c:
            for role in (self.migrator, self.app, self.dev, self.report):
                c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            c.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(self.app), sql.Identifier(self.dev))
            )
            c.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.db), sql.Identifier(self.app)
                )
            )
        with psycopg.connect(self.dsn(self.app), autocommit=True) as c:
            c.execute(
                "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "email text)"
            )
            c.execute(
                "CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint REFERENCES users)"
            )
            c.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT INSERT, UPDATE ON TABLES TO {}"
                ).format(sql.Identifier(self.report))
            )
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")

    def config(self, folder: Path) -> Path:
        path = folder / "pgwarden.toml"
        path.write_text(
            f"""
[environments.production]
protected = true
[environments.production.roles]
migration = "{self.migrator}"
application = ["{self.app}"]
readonly = ["{self.dev}", "{self.report}"]
break_glass = ["postgres"]
superusers = ["postgres"]
""",
            encoding="utf-8",
        )
        return path

    def drop(self) -> None:
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as c:
            c.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db))
            )
            for role in (self.migrator, self.app, self.dev, self.report):
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def team(pg_any: Cluster) -> Iterator[Team]:
    t = Team(pg_any, f"dw{os.getpid()}_{next(_ids)}")
    t.setup()
    yield t
    t.drop()


def _findings(out: str) -> list[dict[str, Any]]:
    return list(json.loads(out)["findings"])


def test_audit_fix_plan_apply_then_clean(team: Team, tmp_path: Path) -> None:
    cfg = str(team.config(tmp_path))
    base = ("--database-url", team.dsn(), "--env", "production", "--config", cfg)

    # 1. the audit names every role that can DROP or write, and why
    r = audit(*base, "--format", "json")
    assert r.exit_code == 1, r.output
    findings = _findings(r.stdout)
    by_role = {(f["role"], f["code"]): f for f in findings}
    app_ddl = by_role[(team.app, "PW502")]
    assert app_ddl["severity"] == "error"
    assert f"{team.app} -> owns table public.users" in app_ddl["paths"]
    dev_ddl = by_role[(team.dev, "PW502")]
    assert any(
        p.startswith(f"{team.dev} -> member of {team.app} (INHERIT") and p.endswith("public.users")
        for p in dev_ddl["paths"]
    ), dev_ddl["paths"]
    future = by_role[(team.report, "PW503")]
    assert any("default privileges of" in p and "INSERT" in p for p in future["paths"])
    public = by_role[("PUBLIC", "PW505")]
    assert "PUBLIC -> granted CREATE on schema public" in public["paths"]
    # the migration role and the declared superuser may do what they do; but the migration
    # role cannot create pgwarden's schema (the database is the application's) nor create in
    # public but through PUBLIC's grant, which the fix revokes: the first apply would fail
    assert not any(
        f["role"] in (team.migrator, "postgres") and f["severity"] == "error"
        for f in findings
        if f["code"] != "PW510"
    )
    cannot = by_role[(team.migrator, "PW510")]
    assert "in schema public (no CREATE" in cannot["message"], cannot
    assert f"in database {team.db}" in cannot["message"], cannot
    text = audit(*base)
    assert text.exit_code == 1
    assert f"{team.dev} -> member of {team.app}" in text.stdout

    # 2. the fix as a plan, reviewable with --dry-run, applied by the break-glass superuser
    plan = tmp_path / "revoke.sql"
    r = audit(*base, "--fix-plan", str(plan), "--format", "json")
    assert r.exit_code == 1 and plan.exists(), r.output
    sql_text = plan.read_text()
    # each table moves in a short transaction of its own, with what the roles use through
    # its owner: the application's DML, the developer's reads (a member of the owner)
    move = (
        f'BEGIN;\nALTER TABLE "public"."users" OWNER TO "{team.migrator}";\n'
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "public"."users" TO "{team.app}";\n'
        f'GRANT USAGE, SELECT ON SEQUENCE "public"."users_id_seq" TO "{team.app}";\n'
        f'GRANT SELECT ON TABLE "public"."users" TO "{team.dev}";\n'
        f'GRANT SELECT ON SEQUENCE "public"."users_id_seq" TO "{team.dev}";\nCOMMIT;'
    )
    assert move in sql_text
    assert (
        sql_text.index(move)
        < sql_text.index("REASSIGN OWNED")
        < sql_text.index(f'REVOKE "{team.app}" FROM "{team.dev}"')
    )
    dry = pgwarden(tmp_path, "apply", str(plan), *base, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "a real run would be refused" in dry.stderr  # postgres needs --break-glass
    applied = pgwarden(
        tmp_path, "apply", str(plan), *base, "--yes", "--break-glass", "done-when test"
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "BREAK GLASS" in applied.stderr

    # 3. the application still reads and writes its tables, also tables created later
    with psycopg.connect(team.dsn(team.app), autocommit=True) as c:
        c.execute("INSERT INTO users (email) VALUES ('a@example.com')")
        c.execute("UPDATE users SET email = 'b@example.com'")
        c.execute("INSERT INTO orders (user_id) SELECT id FROM users")
        assert c.execute("SELECT count(*) FROM orders").fetchone() == (1,)
        c.execute("DELETE FROM orders")
    # the next migration, applied as the migration role (which now owns pgwarden's journal)
    (tmp_path / "002_invoices.sql").write_text(
        "CREATE TABLE invoices (id bigserial PRIMARY KEY);\n"
    )
    mig = (*base[2:], "--database-url", team.dsn(team.migrator), "--yes")
    nxt = pgwarden(tmp_path, "apply", str(tmp_path / "002_invoices.sql"), *mig)
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    with psycopg.connect(team.dsn(team.app), autocommit=True) as c:
        c.execute("INSERT INTO invoices DEFAULT VALUES")
        with pytest.raises(pge.InsufficientPrivilege):
            c.execute("DROP TABLE invoices")

    # 4. the developer can no longer drop (or write) production tables; it still reads
    with psycopg.connect(team.dsn(team.dev), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone() == (1,)
        with pytest.raises(pge.InsufficientPrivilege):
            c.execute("DROP TABLE users")
        with pytest.raises(pge.InsufficientPrivilege):
            c.execute("DELETE FROM users")
        with pytest.raises(pge.InsufficientPrivilege):
            c.execute("CREATE TABLE public.scratch (id int)")

    # 5. a second audit is clean, and a second fix plan is empty
    again = audit(*base, "--format", "json", "--fix-plan", str(plan))
    assert again.exit_code == 0, again.output
    assert [f for f in _findings(again.stdout) if f["severity"] == "error"] == []
    assert "nothing to fix" in again.stderr
    with psycopg.connect(team.dsn(), autocommit=True) as c:
        row = c.execute("SELECT current_user_name, reason FROM pgwarden.break_glass").fetchone()
    assert row == ("postgres", "done-when test")
