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
