"""Write paths beyond grants on whole tables, on every server version: column-level
grants and SECURITY DEFINER routines (EXECUTE to PUBLIC by default). What the audit
claims a role can do, the role really can do, and what it does not claim, the server
refuses; the fix plan cuts the paths and keeps the routine the application may call."""

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
class Shop:
    cluster: Cluster
    db: str
    n: dict[str, str]
    settings: Settings

    def audit(self) -> AuditReport:
        return audit(self.cluster.dsn(self.db), env="production", settings=self.settings)

    def connect(self, role: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.cluster.dsn(self.db, self.n.get(role, role)))


@pytest.fixture
def shop(pg_any: Cluster) -> Iterator[Shop]:
    """users owned by a NOLOGIN owner; dev may UPDATE one column; four SECURITY DEFINER
    routines: purge() (owner can drop users), log_event() (owner only INSERTs into
    events), noop() (owner can do nothing), hidden.purge() (schema dev may not use)."""
    p = f"wp{os.getpid()}_{next(_ids)}"
    n = {k: f"{p}_{k}" for k in ("owner", "writer", "idle", "ops", "dev", "app", "migrator")}
    db = f"{p}_db"
    i = {k: sql.Identifier(v) for k, v in n.items()}
    with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
        for k in ("owner", "writer", "idle", "ops"):
            c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(i[k]))
        for k in ("dev", "app", "migrator"):
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(i[k]))
        c.execute(sql.SQL("GRANT {} TO {}").format(i["ops"], i["dev"]))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(pg_any.dsn(db), autocommit=True) as c:
        c.execute("CREATE TABLE users (id int, email text, admin bool)")
        c.execute("CREATE TABLE events (what text)")
        c.execute("INSERT INTO users VALUES (1, 'a@x', false)")
        c.execute(sql.SQL("ALTER TABLE users OWNER TO {}").format(i["owner"]))
        c.execute(sql.SQL("ALTER TABLE events OWNER TO {}").format(i["migrator"]))
        c.execute(sql.SQL("GRANT INSERT ON events TO {}").format(i["writer"]))
        c.execute(sql.SQL("GRANT UPDATE (email) ON users TO {}").format(i["dev"]))
        c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON events TO {}").format(i["app"]))
        c.execute(
            "CREATE FUNCTION purge() RETURNS void LANGUAGE sql SECURITY DEFINER "
            "AS 'DROP TABLE public.users'"
        )
        c.execute(
            "CREATE PROCEDURE log_event(w text) LANGUAGE sql SECURITY DEFINER "
            "AS 'INSERT INTO public.events VALUES (w)'"
        )
        c.execute("CREATE FUNCTION noop() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        for fn in ("wipe", "reset_email"):  # EXECUTE to a group dev is in, and to dev itself
            c.execute(
                f"CREATE FUNCTION {fn}() RETURNS void LANGUAGE sql SECURITY DEFINER "
                "AS 'UPDATE public.users SET email = NULL'"
            )
            c.execute(f"REVOKE EXECUTE ON FUNCTION {fn}() FROM PUBLIC")
        c.execute(sql.SQL("GRANT EXECUTE ON FUNCTION wipe() TO {}").format(i["ops"]))
        c.execute(sql.SQL("GRANT EXECUTE ON FUNCTION reset_email() TO {}").format(i["dev"]))
        c.execute("CREATE SCHEMA hidden")
        c.execute(
            "CREATE FUNCTION hidden.purge() RETURNS void LANGUAGE sql SECURITY DEFINER "
            "AS 'DROP TABLE public.users'"
        )
        c.execute(
            "CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
            "AS 'BEGIN RETURN NEW; END'"
        )
        for fn, owner in (
            ("purge()", "owner"),
            ("log_event(text)", "writer"),
            ("noop()", "idle"),
            ("wipe()", "owner"),
            ("reset_email()", "owner"),
            ("hidden.purge()", "owner"),
            ("trg()", "owner"),
        ):
            kind = "PROCEDURE" if fn.startswith("log_event") else "FUNCTION"
            c.execute(sql.SQL(f"ALTER {kind} {fn} OWNER TO {{}}").format(i[owner]))
        c.execute(sql.SQL("REVOKE ALL ON SCHEMA hidden FROM {}").format(i["dev"]))
    policy = RolePolicy(
        migration=n["migrator"],
        application=(n["app"],),
        readonly=(n["dev"],),
        break_glass=("postgres",),
        superusers=("postgres",),
    )
    settings = Settings(environments={"production": Environment("production", True, policy)})
    yield Shop(pg_any, db, n, settings)
    with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
        for v in n.values():
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(v)))


def _can(shop: Shop, role: str, statement: str) -> bool:
    """Whether the server lets `role` run `statement` (rolled back either way)."""
    with shop.connect(role) as c:
        try:
            c.execute(statement)
        except pge.InsufficientPrivilege:
            return False
        finally:
            c.rollback()
    return True


def _paths(report: AuditReport, role: str, code: str) -> list[str]:
    return [p for f in report.findings if f.role == role and f.code == code for p in f.paths]


def test_column_grants_and_definer_routines_are_write_paths(shop: Shop) -> None:
    n = shop.n
    dev, app = n["dev"], n["app"]
    report = shop.audit()
    assert f"{dev} -> granted UPDATE (email) on table public.users" in _paths(report, dev, "PW503")
    purge = (
        f"{dev} -> PUBLIC (every role) -> PUBLIC granted EXECUTE on function public.purge() "
        f"(SECURITY DEFINER: runs with the rights of {n['owner']}; body: DROP) -> "
        "owns table public.users"
    )
    assert purge in _paths(report, dev, "PW502")
    log_event = (
        f"log_event(IN w text) (SECURITY DEFINER: runs with the rights of {n['writer']}; "
        "body: INSERT)"
    )
    assert any(log_event in p for p in _paths(report, dev, "PW503")), [
        (f.code, f.role, f.paths) for f in report.findings
    ]
    # the application may INSERT into events itself: log_event() is no finding for it;
    # purge() is (its owner can drop users)
    assert not any("log_event" in p for f in report.findings if f.role == app for p in f.paths)
    assert any("public.purge()" in p for p in _paths(report, app, "PW502"))
    public = next(f for f in report.general if f.code == "PW505")
    assert "public.purge()" in public.message and "REVOKE EXECUTE ON ROUTINE" in public.help
    runs = f"(SECURITY DEFINER: runs with the rights of {n['owner']}; body: UPDATE)"
    assert (
        f"{dev} -> member of {n['ops']} (INHERIT, SET) -> {n['ops']} granted EXECUTE on "
        f"function public.wipe() {runs} -> owns table public.users"
    ) in _paths(report, dev, "PW502")
    assert (
        f"{dev} -> granted EXECUTE on function public.reset_email() {runs} -> owns table "
        "public.users"
    ) in _paths(report, dev, "PW502")
    shown = " ".join(p for f in report.findings for p in f.paths)
    assert "noop()" not in shown and "hidden.purge" not in shown and "trg()" not in shown
    # the server agrees with every claim and every silence
    assert _can(shop, "dev", "UPDATE users SET email = 'b@x'")
    assert not _can(shop, "dev", "UPDATE users SET admin = true")
    assert _can(shop, "dev", "SELECT purge()")
    assert _can(shop, "dev", "CALL log_event('x')")
    assert not _can(shop, "dev", "SELECT hidden.purge()")
    assert _can(shop, "dev", "SELECT wipe()") and _can(shop, "dev", "SELECT reset_email()")
    assert not _can(shop, "app", "SELECT wipe()")

    plan = report.fix_plan()
    assert plan is not None
    with shop.connect() as c:
        text = plan.render(c, ["test"])
        assert f'REVOKE UPDATE ("email") ON TABLE "public"."users" FROM "{dev}"' in text
        assert 'REVOKE EXECUTE ON ROUTINE "public"."purge"() FROM PUBLIC' in text
        assert 'REVOKE EXECUTE ON ROUTINE "public"."log_event"(IN w text) FROM PUBLIC' in text
        assert f'GRANT EXECUTE ON ROUTINE "public"."log_event"(IN w text) TO "{app}"' in text
        assert f"the application can no longer call: {app} (function public.purge()" in text
        assert f'REVOKE EXECUTE ON ROUTINE "public"."wipe"() FROM "{n["ops"]}"' in text
        assert f'REVOKE EXECUTE ON ROUTINE "public"."reset_email"() FROM "{dev}"' in text
        assert "noop" not in text and "REASSIGN" not in text
        assert f'REVOKE "{n["ops"]}"' not in text  # the routine is the path, not the membership
        c.autocommit = True
        c.execute(text.encode())
    assert not _can(shop, "dev", "UPDATE users SET email = 'b@x'")
    assert not _can(shop, "dev", "SELECT purge()")
    assert not _can(shop, "dev", "CALL log_event('x')")
    assert not _can(shop, "dev", "SELECT wipe()") and not _can(shop, "dev", "SELECT reset_email()")
    assert not _can(shop, "app", "SELECT purge()")
    assert _can(shop, "app", "CALL log_event('x')")
    after = shop.audit()
    assert after.count("error") == 0, [f.message for f in after.findings]


def test_row_level_security_bypass_is_listed_as_the_server_applies_it(pg_any: Cluster) -> None:
    """Listed (json), never judged: BYPASSRLS, and the owner (and who inherits its
    privileges) unless the table forces row level security."""
    p = f"rl{os.getpid()}_{next(_ids)}"
    n = {k: f"{p}_{k}" for k in ("owner", "member", "bypass", "reader")}
    i = {k: sql.Identifier(v) for k, v in n.items()}
    db = f"{p}_db"
    with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(i["owner"]))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(i["member"], i["owner"]))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(i["bypass"]))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(i["reader"]))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        with psycopg.connect(pg_any.dsn(db), autocommit=True) as c:
            c.execute("CREATE TABLE t (id int)")
            c.execute("INSERT INTO t VALUES (1)")
            c.execute("ALTER TABLE t ENABLE ROW LEVEL SECURITY")
            c.execute("CREATE POLICY nothing ON t USING (false)")
            c.execute(sql.SQL("ALTER TABLE t OWNER TO {}").format(i["owner"]))
            c.execute(sql.SQL("GRANT SELECT ON t TO {}, {}").format(i["bypass"], i["reader"]))
        for force in (False, True):
            if force:
                with psycopg.connect(pg_any.dsn(db), autocommit=True) as c:
                    c.execute("ALTER TABLE t FORCE ROW LEVEL SECURITY")
            report = audit(pg_any.dsn(db), env=None, settings=Settings())
            listed = {
                v.role
                for v in report.verdicts
                for cap in v.capabilities
                if cap.kind == "rls_bypass" and cap.object == "public.t"
            }
            for key, role in n.items():
                with psycopg.connect(pg_any.dsn(db, role)) as c:
                    row = c.execute("SELECT count(*) FROM t").fetchone()
                assert (role in listed) == (row == (1,)), (force, key, listed)
            assert (n["owner"] in listed) == (not force)
            assert n["bypass"] in listed and n["reader"] not in listed
            assert not any(f.role in n.values() for f in report.findings)
    finally:
        with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
            for v in n.values():
                c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(v)))
