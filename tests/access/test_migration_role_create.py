"""The audit checks that the migration role can create where it must: in the application's
schemas (PostgreSQL 15+ no longer grants CREATE on schema public to PUBLIC) and, before
pgwarden's own schema exists, in the database. Green audit, then `pgwarden apply` denied,
is what a user met (real clusters, PostgreSQL 15-18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.errors import PgwardenError
from pgwarden.pg.cluster import Cluster
from tests.access.sandbox import Sandbox, sandbox

_CHANGE = "CREATE TABLE public.orders (id bigint PRIMARY KEY);\n"


def _apply_as(sb: Sandbox, role: str, path: Path) -> str:
    """`pgwarden apply` of `path` as `role` (a key of `sb.n`); the run's state."""
    result = apply_plan(
        commands.load_plan([path]),
        database_url=sb.cluster.dsn(sb.db, sb.n.get(role, role)),
        policy=GuardPolicy(env="production", yes=True, restamp=True),
        settings=sb.settings,
    )
    return result.state


def test_a_migration_role_that_cannot_create_is_a_finding_with_its_fix(
    pg_any: Cluster, tmp_path: Path
) -> None:
    if pg_any.installation.major < 15:
        pytest.skip("before 15 PUBLIC may CREATE on schema public")
    roles = {"migrator": "LOGIN", "app": "LOGIN", "reader": "LOGIN"}
    with sandbox(pg_any, "mc", roles) as sb:
        n = sb.n
        with sb.connect(autocommit=True) as c:  # the database and public belong to postgres
            c.execute("CREATE TABLE items (id int PRIMARY KEY)")
            c.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON items TO "{n["app"]}"')
            c.execute(f'GRANT SELECT ON items TO "{n["reader"]}"')
        sb.protect("migrator", ("app",), "reader")
        change = tmp_path / "001_orders.sql"
        change.write_text(_CHANGE)
        with pytest.raises(PgwardenError, match="cannot create or write the pgwarden schema"):
            _apply_as(sb, "migrator", change)  # what the green audit let through
        report = sb.audit()
        found = [f for f in report.findings if f.code == "PW510"]
        assert [f.severity for f in found] == ["error"], [f.message for f in report.findings]
        (f,) = found
        assert f.role == n["migrator"]
        assert "cannot create in schema public" in f.message, f.message
        assert f"database {sb.db}" in f.message, f.message  # pgwarden's schema, first apply
        assert f'GRANT CREATE ON SCHEMA public TO "{n["migrator"]}"' in f.help, f.help
        plan = report.fix_plan()
        assert plan is not None
        fix = tmp_path / "fix.sql"
        with sb.connect() as c:
            fix.write_text(plan.render(c, ["test"]))
        text = fix.read_text()
        assert f'GRANT CREATE ON SCHEMA "public" TO "{n["migrator"]}";' in text, text
        assert f'GRANT CREATE ON DATABASE "{sb.db}" TO "{n["migrator"]}";' in text, text
        result = apply_plan(
            commands.load_plan([fix]),
            database_url=sb.cluster.dsn(sb.db),
            policy=GuardPolicy(env="production", yes=True, break_glass="test", restamp=True),
            settings=sb.settings,
        )
        assert result.state == "done"
        after = sb.audit()
        assert not [f for f in after.findings if f.code == "PW510"]
        assert after.count("error") == 0, [f.message for f in after.findings]
        assert _apply_as(sb, "migrator", change) == "done"
