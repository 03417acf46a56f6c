"""CREATEROLE as the server decides it, on every version: before PostgreSQL 16 a
CREATEROLE role may grant itself any role that is not a superuser (and so reach
whatever those own); from 16 only the roles it holds ADMIN OPTION on. The audit's
claims are checked by trying the GRANT as that role; the fix plan's NOCREATEROLE
closes the path without touching what the other roles own."""

from __future__ import annotations

import itertools
import os

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.audit import audit
from pgwarden.access.capabilities import reach
from pgwarden.access.roles import read_catalog
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings

_ids = itertools.count()


def _self_grant(cluster: Cluster, db: str, login: str, role: str) -> bool:
    """Whether `login` may GRANT `role` to itself (rolled back)."""
    with psycopg.connect(cluster.dsn(db, login)) as c:
        try:
            c.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login)))
        except pge.InsufficientPrivilege:
            return False
        finally:
            c.rollback()
    return True


def test_createrole_reaches_what_the_server_lets_it_grant(pg_any: Cluster) -> None:
    p = f"cr{os.getpid()}_{next(_ids)}"
    owner, su, cr, migrator, made = (f"{p}_{k}" for k in ("owner", "su", "cr", "migrator", "made"))
    db = f"{p}_db"
    with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
        major = c.info.server_version // 10000
        c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
        c.execute(sql.SQL("CREATE ROLE {} NOLOGIN SUPERUSER").format(sql.Identifier(su)))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(cr)))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(migrator)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    policy = RolePolicy(
        migration=migrator, readonly=(cr,), break_glass=("postgres",), superusers=("postgres",)
    )
    settings = Settings(environments={"production": Environment("production", True, policy)})
    try:
        with psycopg.connect(pg_any.dsn(db, cr), autocommit=True) as c:  # 16+: ADMIN OPTION
            c.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(made)))
        with psycopg.connect(pg_any.dsn(db), autocommit=True) as c:
            c.execute("CREATE TABLE t (id int)")
            c.execute(sql.SQL("ALTER TABLE t OWNER TO {}").format(sql.Identifier(owner)))
            cat = read_catalog(c)
        ours = reach(cat, cr)
        for role in (owner, su, made, "pg_write_all_data"):
            server = _self_grant(pg_any, db, cr, role)
            assert (role in ours) == server, (major, role, ours.get(role))
        assert (owner in ours) == (major < 16) and made in ours
        report = audit(pg_any.dsn(db), env="production", settings=settings)
        codes = {f.code for f in report.findings if f.role == cr}
        if major < 16:
            assert {"PW502", "PW503", "PW504"} <= codes
            path = next(f.paths for f in report.findings if f.role == cr and f.code == "PW502")
            assert (
                f"{cr} -> {cr} has CREATEROLE (before PostgreSQL 16: any non-superuser role) -> "
                f"can GRANT {owner} to itself -> owns table public.t"
            ) in path
            with psycopg.connect(pg_any.dsn(db, cr)) as c:  # what the path says, it does
                c.execute(sql.SQL("GRANT {} TO {}").format(*map(sql.Identifier, (owner, cr))))
                c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
                c.execute("DROP TABLE t")
                c.rollback()
        else:
            assert codes == {"PW504"}
        plan = report.fix_plan()
        assert plan is not None
        with psycopg.connect(pg_any.dsn(db), autocommit=True) as c:
            text = plan.render(c, ["test"])
            assert f'ALTER ROLE "{cr}" NOCREATEROLE' in text
            assert "REASSIGN" not in text and "REVOKE" not in text, text
            c.execute(text.encode())
        assert not _self_grant(pg_any, db, cr, owner)
        after = audit(pg_any.dsn(db), env="production", settings=settings)
        assert after.count("error") == 0, [f.message for f in after.findings]
    finally:
        with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
            for r in (made, owner, su, cr, migrator):
                c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(r)))
