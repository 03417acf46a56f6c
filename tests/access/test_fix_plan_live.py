"""The fix plan keeps the application working while it runs: an application session
writing and reading all along never gets a permission error."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden import commands
from pgwarden.access.audit import audit
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings

_ids = itertools.count()


def test_the_application_writes_through_the_whole_fix(pg_cluster: Cluster, tmp_path: Path) -> None:
    p = f"fx{os.getpid()}_{next(_ids)}"
    migrator, app, db = f"{p}_migrator", f"{p}_app", f"{p}_db"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
        for role in (migrator, app):
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        c.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(app))
        )
    tables = [f"t{i}" for i in range(12)]
    with psycopg.connect(pg_cluster.dsn(db, app), autocommit=True) as c:
        for t in tables:
            c.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v int)").format(
                sql.Identifier(t)))  # fmt: skip
    policy = RolePolicy(
        migration=migrator, application=(app,), break_glass=("postgres",), superusers=("postgres",)
    )
    settings = Settings(environments={"production": Environment("production", True, policy)})
    errors: list[str] = []
    writes = 0
    stop = threading.Event()

    def application() -> None:
        nonlocal writes
        with psycopg.connect(pg_cluster.dsn(db, app), autocommit=True) as c:
            while not stop.is_set():
                for t in tables:
                    try:
                        c.execute(
                            sql.SQL("INSERT INTO {} (v) VALUES (1)").format(sql.Identifier(t))
                        )
                        c.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
                        writes += 1
                    except psycopg.Error as exc:
                        errors.append(f"{t}: {exc.sqlstate} {exc}")

    try:
        report = audit(pg_cluster.dsn(db), env="production", settings=settings)
        plan = report.fix_plan()
        assert plan is not None and len(plan.relations) == len(tables)
        with psycopg.connect(pg_cluster.dsn(db)) as c:
            path = tmp_path / "fix.sql"
            path.write_text(plan.render(c, ["test"]))
        worker = threading.Thread(target=application)
        worker.start()
        try:
            result = apply_plan(
                commands.load_plan([path]),
                database_url=pg_cluster.dsn(db),
                policy=GuardPolicy(env="production", yes=True, break_glass="test", restamp=True),
                settings=settings,
            )
        finally:
            stop.set()
            worker.join()
        assert result.state == "done"
        assert writes > 0 and errors == []
        after = audit(pg_cluster.dsn(db), env="production", settings=settings)
        assert after.count("error") == 0, [f.message for f in after.findings]
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
            for role in (migrator, app):
                c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_an_application_role_that_is_a_superuser_is_fixed_in_one_plan(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    """Small teams' other habit: the application connects as a superuser that owns its
    tables. One plan demotes it and moves its tables, and the application still writes."""
    p = f"fs{os.getpid()}_{next(_ids)}"
    migrator, app, db = f"{p}_migrator", f"{p}_app", f"{p}_db"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(migrator)))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(app)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(pg_cluster.dsn(db, app), autocommit=True) as c:
        c.execute("CREATE TABLE users (id bigserial PRIMARY KEY)")
    policy = RolePolicy(
        migration=migrator, application=(app,), break_glass=("postgres",), superusers=("postgres",)
    )
    settings = Settings(environments={"production": Environment("production", True, policy)})
    try:
        report = audit(pg_cluster.dsn(db), env="production", settings=settings)
        assert any(f.code == "PW501" and f.role == app for f in report.findings)
        plan = report.fix_plan()
        assert plan is not None
        with psycopg.connect(pg_cluster.dsn(db)) as c:
            text = plan.render(c, ["test"])
        assert f'ALTER TABLE "public"."users" OWNER TO "{migrator}"' in text
        assert f'ALTER ROLE "{app}" NOSUPERUSER' in text
        path = tmp_path / "fix.sql"
        path.write_text(text)
        result = apply_plan(
            commands.load_plan([path]),
            database_url=pg_cluster.dsn(db),
            policy=GuardPolicy(env="production", yes=True, break_glass="test", restamp=True),
            settings=settings,
        )
        assert result.state == "done"
        assert audit(pg_cluster.dsn(db), env="production", settings=settings).count("error") == 0
        with psycopg.connect(pg_cluster.dsn(db, app), autocommit=True) as c:
            c.execute("INSERT INTO users DEFAULT VALUES")
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
            for role in (migrator, app):
                c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
