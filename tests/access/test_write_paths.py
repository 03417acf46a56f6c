"""Write paths beyond grants on whole tables, on every server version: column-level
grants and SECURITY DEFINER routines (EXECUTE to PUBLIC by default). What the audit
claims a role can do, the role really can do, and what it does not claim, the server
refuses; the fix plan cuts the paths and keeps the routine the application may call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg import sql

from pgwarden.access.audit import AuditReport, audit
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Settings
from tests.access.sandbox import Sandbox, sandbox


@pytest.fixture
def shop(pg_any: Cluster) -> Iterator[Sandbox]:
    """users owned by a NOLOGIN owner; dev may UPDATE one column; four SECURITY DEFINER
    routines: purge() (owner can drop users), log_event() (owner only INSERTs into
    events), noop() (owner can do nothing), hidden.purge() (schema dev may not use)."""
    roles = dict.fromkeys(("owner", "writer", "idle", "ops"), "NOLOGIN")
    roles.update(dict.fromkeys(("dev", "app", "migrator"), "LOGIN"))
    with sandbox(pg_any, "wp", roles) as shop:
        _build(shop)
        shop.protect("migrator", ("app",), "dev")
        yield shop


def _build(shop: Sandbox) -> None:
    """The database and grants of `shop`."""
    i = {k: sql.Identifier(v) for k, v in shop.n.items()}
    with shop.connect(autocommit=True) as c:
        c.execute(sql.SQL("GRANT {} TO {}").format(i["ops"], i["dev"]))
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


def _paths(report: AuditReport, role: str, code: str) -> list[str]:
    return [p for f in report.findings if f.role == role and f.code == code for p in f.paths]


def test_column_grants_and_definer_routines_are_write_paths(shop: Sandbox) -> None:
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
    assert shop.can("dev", "UPDATE users SET email = 'b@x'")
    assert not shop.can("dev", "UPDATE users SET admin = true")
    assert shop.can("dev", "SELECT purge()")
    assert shop.can("dev", "CALL log_event('x')")
    assert not shop.can("dev", "SELECT hidden.purge()")
    assert shop.can("dev", "SELECT wipe()") and shop.can("dev", "SELECT reset_email()")
    assert not shop.can("app", "SELECT wipe()")

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
    assert not shop.can("dev", "UPDATE users SET email = 'b@x'")
    assert not shop.can("dev", "SELECT purge()")
    assert not shop.can("dev", "CALL log_event('x')")
    assert not shop.can("dev", "SELECT wipe()") and not shop.can("dev", "SELECT reset_email()")
    assert not shop.can("app", "SELECT purge()")
    assert shop.can("app", "CALL log_event('x')")
    after = shop.audit()
    assert after.count("error") == 0, [f.message for f in after.findings]


def test_row_level_security_bypass_is_listed_as_the_server_applies_it(pg_any: Cluster) -> None:
    """Listed (json), never judged: BYPASSRLS, and the owner (and who inherits its
    privileges) unless the table forces row level security."""
    roles = {"owner": "LOGIN", "member": "LOGIN", "bypass": "LOGIN BYPASSRLS", "reader": "LOGIN"}
    with sandbox(pg_any, "rl", roles) as site:
        n, db = site.n, site.db
        i = {k: sql.Identifier(v) for k, v in n.items()}
        with site.connect(autocommit=True) as c:
            c.execute(sql.SQL("GRANT {} TO {}").format(i["owner"], i["member"]))
            c.execute("CREATE TABLE t (id int)")
            c.execute("INSERT INTO t VALUES (1)")
            c.execute("ALTER TABLE t ENABLE ROW LEVEL SECURITY")
            c.execute("CREATE POLICY nothing ON t USING (false)")
            c.execute(sql.SQL("ALTER TABLE t OWNER TO {}").format(i["owner"]))
            c.execute(sql.SQL("GRANT SELECT ON t TO {}, {}").format(i["bypass"], i["reader"]))
        for force in (False, True):
            if force:
                with site.connect(autocommit=True) as c:
                    c.execute("ALTER TABLE t FORCE ROW LEVEL SECURITY")
            report = audit(pg_any.dsn(db), env=None, settings=Settings())
            listed = {
                v.role
                for v in report.verdicts
                for cap in v.capabilities
                if cap.kind == "rls_bypass" and cap.object == "public.t"
            }
            for key, role in n.items():
                with site.connect(key) as c:
                    row = c.execute("SELECT count(*) FROM t").fetchone()
                assert (role in listed) == (row == (1,)), (force, key, listed)
            assert (n["owner"] in listed) == (not force)
            assert n["bypass"] in listed and n["reader"] not in listed
            assert not any(f.role in n.values() for f in report.findings)
