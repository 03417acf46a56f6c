"""The fix plan gives each role back what it has today and nothing more: an application role
that may only append to one table and read another keeps exactly that (the plan used to
grant it SELECT, INSERT, UPDATE, DELETE on every table of its schemas); a read-only role
reads what it read (real clusters, PostgreSQL 15-18)."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.pg.cluster import Cluster
from tests.access.sandbox import Sandbox, sandbox


def _setup(sb: Sandbox) -> None:
    n = sb.n
    with sb.connect(autocommit=True) as c:
        c.execute(f'GRANT CREATE ON DATABASE "{sb.db}" TO "{n["migrator"]}"')
        c.execute(f'GRANT CREATE ON SCHEMA public TO "{n["migrator"]}", "{n["owners"]}"')
        c.execute("CREATE TABLE audit_log (id bigserial PRIMARY KEY, what text)")
        c.execute(f'GRANT INSERT ON audit_log TO "{n["app"]}"')  # append-only
        c.execute(f'GRANT USAGE ON SEQUENCE audit_log_id_seq TO "{n["app"]}"')
        c.execute("CREATE TABLE prices (id int PRIMARY KEY, cents int)")
        c.execute("INSERT INTO prices VALUES (1, 100)")
        c.execute(f'GRANT SELECT, TRUNCATE ON prices TO "{n["app"]}"')  # TRUNCATE: a finding
        c.execute(f'GRANT "{n["owners"]}" TO "{n["app"]}", "{n["reader"]}"')
    with sb.connect(autocommit=True) as c:
        c.execute(f'SET ROLE "{n["owners"]}"')
        c.execute("CREATE TABLE carts (id serial PRIMARY KEY, n int)")  # the app's, by its group


def test_the_fix_plan_keeps_each_role_to_what_it_has(pg_any: Cluster, tmp_path: Path) -> None:
    roles = {"migrator": "LOGIN", "app": "LOGIN", "reader": "LOGIN", "owners": "NOLOGIN"}
    with sandbox(pg_any, "lp", roles) as sb:
        _setup(sb)
        sb.protect("migrator", ("app",), "reader")
        report = sb.audit()
        assert report.count("error") > 0
        plan = report.fix_plan()
        assert plan is not None
        fix = tmp_path / "fix.sql"
        with sb.connect() as c:
            fix.write_text(plan.render(c, ["test"]))
        text = fix.read_text()
        assert "ON ALL TABLES" not in text and "ON ALL SEQUENCES" not in text, text
        result = apply_plan(
            commands.load_plan([fix]),
            database_url=sb.cluster.dsn(sb.db),
            policy=GuardPolicy(env="production", yes=True, break_glass="test", restamp=True),
            settings=sb.settings,
        )
        assert result.state == "done"
        after = sb.audit()
        assert after.count("error") == 0, [f.message for f in after.findings]
        # the application: what it could do, no more
        assert sb.can("app", "INSERT INTO audit_log (what) VALUES ('x')")
        assert not sb.can("app", "UPDATE audit_log SET what = 'y'")
        assert not sb.can("app", "DELETE FROM audit_log")
        assert sb.can("app", "SELECT cents FROM prices")
        assert not sb.can("app", "UPDATE prices SET cents = 1")
        assert not sb.can("app", "INSERT INTO prices VALUES (2, 1)")
        assert not sb.can("app", "TRUNCATE prices")
        for dml in (
            "INSERT INTO carts (n) VALUES (1)",
            "UPDATE carts SET n = 2",
            "DELETE FROM carts",
        ):
            assert sb.can("app", dml), dml
        assert sb.can("app", "SELECT n FROM carts")
        assert not sb.can("app", "DROP TABLE carts")
        # the read-only role reads what it read (carts, through the group it left)
        assert sb.can("reader", "SELECT n FROM carts")
        assert not sb.can("reader", "SELECT cents FROM prices")
        assert not sb.can("reader", "INSERT INTO carts (n) VALUES (1)")
        # tables the migration role creates later are usable by the application
        later = tmp_path / "002_later.sql"
        later.write_text("CREATE TABLE public.later (id bigserial PRIMARY KEY);\n")
        done = apply_plan(
            commands.load_plan([later]),
            database_url=sb.cluster.dsn(sb.db, sb.n["migrator"]),
            policy=GuardPolicy(env="production", yes=True),
            settings=sb.settings,
        )
        assert done.state == "done"
        assert sb.can("app", "INSERT INTO later DEFAULT VALUES")
