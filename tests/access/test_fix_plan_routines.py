"""The fix plan's EXECUTE revokes on SECURITY DEFINER routines hold for routines created
later (PUBLIC's default EXECUTE is revoked for their owner), and a group the application
uses keeps its grant when the path through it is cut by revoking a membership."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgwarden.pg.cluster import Cluster
from tests.access.sandbox import Sandbox, sandbox


@pytest.fixture
def site(pg_cluster: Cluster) -> Iterator[Sandbox]:
    """writer (NOLOGIN) may INSERT into events and owns two SECURITY DEFINER routines:
    stamp() (EXECUTE to PUBLIC, the default) and log_event() (EXECUTE to the group the
    application's login roles are in). report (read-only) is wrongly in that group too."""
    roles = {"writer": "NOLOGIN", "group": "NOLOGIN"}
    roles.update(dict.fromkeys(("app", "report", "late", "migrator"), "LOGIN"))
    with sandbox(pg_cluster, "fr", roles) as site:
        _build(site)
        site.protect("migrator", ("app", "late"), "report")
        yield site


def _build(site: Sandbox) -> None:
    """The database and grants of `site`."""
    i = {k: sql.Identifier(v) for k, v in site.n.items()}
    with site.connect(autocommit=True) as c:
        c.execute(sql.SQL("GRANT {} TO {}, {}").format(i["group"], i["app"], i["report"]))
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


def test_routines_created_later_and_the_applications_group_after_the_fix(site: Sandbox) -> None:
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
    assert site.can("app", "CALL log_event('x')", set_role="group")
    assert site.can("late", "CALL log_event('x')")
    after = site.audit()
    assert after.count("error") == 0, [f.message for f in after.findings]


def test_every_grant_a_flagged_role_reaches_the_routine_through_is_revoked(site: Sandbox) -> None:
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
