"""The fix plan's EXECUTE revokes on SECURITY DEFINER routines hold for routines created
later (PUBLIC's default EXECUTE is revoked for their owner), and a group the application
uses keeps its grant when the path through it is cut by revoking a membership."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.audit import AuditReport, audit
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings

_ids = itertools.count()


@dataclass
class Site:
    cluster: Cluster
    db: str
    n: dict[str, str]
    settings: Settings

    def audit(self) -> AuditReport:
        return audit(self.cluster.dsn(self.db), env="production", settings=self.settings)

    def can(self, role: str, statement: str, *, as_group: bool = False) -> bool:
        """Whether the server lets `role` run `statement` (rolled back either way)."""
        with psycopg.connect(self.cluster.dsn(self.db, self.n[role])) as c:
            try:
                if as_group:
                    c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.n["group"])))
                c.execute(statement)
            except pge.InsufficientPrivilege:
                return False
            finally:
                c.rollback()
        return True


@pytest.fixture
def site(pg_cluster: Cluster) -> Iterator[Site]:
    """writer (NOLOGIN) may INSERT into events and owns two SECURITY DEFINER routines:
    stamp() (EXECUTE to PUBLIC, the default) and log_event() (EXECUTE to the group the
    application's login roles are in). report (read-only) is wrongly in that group too."""
    p = f"fr{os.getpid()}_{next(_ids)}"
    n = {k: f"{p}_{k}" for k in ("writer", "group", "app", "report", "late", "migrator")}
    db = f"{p}_db"
    i = {k: sql.Identifier(v) for k, v in n.items()}
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
        for k in ("writer", "group"):
            c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(i[k]))
        for k in ("app", "report", "late", "migrator"):
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(i[k]))
        c.execute(sql.SQL("GRANT {} TO {}, {}").format(i["group"], i["app"], i["report"]))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(pg_cluster.dsn(db), autocommit=True) as c:
        c.execute(sql.SQL("CREATE TABLE events (what text)"))
        c.execute(sql.SQL("ALTER TABLE events OWNER TO {}").format(i["migrator"]))
        c.execute(sql.SQL("GRANT INSERT ON events TO {}").format(i["writer"]))
        c.execute(sql.SQL("GRANT SELECT, INSERT ON events TO {}").format(i["group"]))
        c.execute(sql.SQL("GRANT SELECT ON events TO {}").format(i["report"]))
        for routine in (
            "FUNCTION stamp() RETURNS void LANGUAGE sql SECURITY DEFINER "
            "AS 'INSERT INTO public.events VALUES (''stamp'')'",
            "PROCEDURE log_event(w text) LANGUAGE sql SECURITY DEFINER "
            "AS 'INSERT INTO public.events VALUES (w)'",
        ):
            c.execute(f"CREATE {routine}")
        c.execute(sql.SQL("ALTER FUNCTION stamp() OWNER TO {}").format(i["writer"]))
        c.execute(sql.SQL("ALTER PROCEDURE log_event(text) OWNER TO {}").format(i["writer"]))
        c.execute("REVOKE EXECUTE ON PROCEDURE log_event(text) FROM PUBLIC")
        c.execute(sql.SQL("GRANT EXECUTE ON PROCEDURE log_event(text) TO {}").format(i["group"]))
    policy = RolePolicy(
        migration=n["migrator"],
        application=(n["app"], n["late"]),
        readonly=(n["report"],),
        break_glass=("postgres",),
        superusers=("postgres",),
    )
    settings = Settings(environments={"production": Environment("production", True, policy)})
    yield Site(pg_cluster, db, n, settings)
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
        for v in n.values():
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(v)))


def test_routines_created_later_and_the_applications_group_after_the_fix(site: Site) -> None:
    n = site.n
    assert site.can("report", "SELECT stamp()") and site.can("report", "CALL log_event('x')")
    plan = site.audit().fix_plan()
    assert plan is not None
    with psycopg.connect(site.cluster.dsn(site.db)) as c:
        text = plan.render(c, ["test"])
        writer = f'FOR ROLE "{n["writer"]}"'
        assert f"ALTER DEFAULT PRIVILEGES {writer} REVOKE EXECUTE ON ROUTINES FROM PUBLIC" in text
        assert (
            f'ALTER DEFAULT PRIVILEGES {writer} GRANT EXECUTE ON ROUTINES TO "{n["app"]}"' in text
        )
        assert f'REVOKE "{n["group"]}" FROM "{n["report"]}"' in text
        assert f'FROM "{n["group"]}"' not in text  # the membership is the cut, not the grant
        c.autocommit = True
        c.execute(text.encode())
        # a SECURITY DEFINER routine the owner creates afterwards
        c.execute(
            sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(n["writer"]))
        )
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(n["writer"])))
        c.execute(
            "CREATE FUNCTION stamp2() RETURNS void LANGUAGE sql SECURITY DEFINER "
            "AS 'INSERT INTO public.events VALUES (''stamp2'')'"
        )
        c.execute("RESET ROLE")
        c.execute(
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(sql.Identifier(n["writer"]))
        )
        c.execute(
            sql.SQL("GRANT {} TO {}").format(*(sql.Identifier(n[k]) for k in ("group", "late")))
        )
    assert not site.can("report", "SELECT stamp()")
    assert not site.can("report", "SELECT stamp2()")  # was executable through PUBLIC
    assert not site.can("report", "CALL log_event('x')")
    assert site.can("app", "SELECT stamp()") and site.can("app", "SELECT stamp2()")
    # the group keeps EXECUTE: as itself (SET ROLE) and for a member added later
    assert site.can("app", "CALL log_event('x')", as_group=True)
    assert site.can("late", "CALL log_event('x')")
    after = site.audit()
    assert after.count("error") == 0, [f.message for f in after.findings]


def test_every_grant_a_flagged_role_reaches_the_routine_through_is_revoked(site: Site) -> None:
    """report may run stamp() through PUBLIC and through a group of its own: both go."""
    n = site.n
    ops = f"{n['group']}_ops"
    with psycopg.connect(site.cluster.dsn(site.db), autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(ops)))
        c.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(ops), sql.Identifier(n["report"]))
        )
        c.execute(sql.SQL("GRANT EXECUTE ON FUNCTION stamp() TO {}").format(sql.Identifier(ops)))
    try:
        plan = site.audit().fix_plan()
        assert plan is not None
        with psycopg.connect(site.cluster.dsn(site.db), autocommit=True) as c:
            c.execute(plan.render(c, ["test"]).encode())
        assert not site.can("report", "SELECT stamp()")
        assert site.can("app", "SELECT stamp()")
        after = site.audit()
        assert after.count("error") == 0, [f.message for f in after.findings]
    finally:
        with psycopg.connect(site.cluster.dsn(site.db), autocommit=True) as c:
            c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(ops)))
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(ops)))
