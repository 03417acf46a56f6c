"""What a new user met following docs/audit.md on a real cluster, end to end.

- A read-only role that owned its tables (a developer who created them) lost
  every read once the fix plan moved them to the migration role: an owner reads
  without a grant, so the move needs one.
- The plan file told a stamped database to `--restamp`, gave `pgwarden apply`
  commands without the database (a dry run without one previews offline and
  never says the real run would be refused), and a plan with nothing to fix
  still said to review and apply it.
- The plan granted every application role DML on every table of its schemas, writes
  it never had (an append-only table): it now keeps what it has, no more.
- A policy naming a role that does not exist did not say which one was meant;
  the summary said "1 errors".
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from pgwarden import commands
from pgwarden.access.audit import audit
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.cli import cli
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings, load_settings
from tests.access.sandbox import sandbox


def _audit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args], env={"COLUMNS": "200"})


def test_the_fix_plan_keeps_a_read_only_owner_reading_and_says_how_to_apply(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    roles = {"migrator": "LOGIN", "app": "LOGIN", "reader": "LOGIN"}
    with sandbox(pg_cluster, "aj", roles) as sb:
        n = sb.n
        with sb.connect(autocommit=True) as c:
            c.execute(f'GRANT CREATE ON DATABASE "{sb.db}" TO "{n["reader"]}"')
            c.execute(f'GRANT CREATE ON SCHEMA public TO "{n["reader"]}"')
        with sb.connect("reader", autocommit=True) as c:  # the developer made them
            c.execute("CREATE TABLE users (id serial PRIMARY KEY, email text)")
            c.execute("INSERT INTO users (email) VALUES ('a@example.com')")
            c.execute("CREATE SCHEMA rpt")
            c.execute("CREATE VIEW rpt.signups AS SELECT count(*) AS n FROM public.users")
        cfg = tmp_path / "pgwarden.toml"
        cfg.write_text(
            "[environments.production]\nprotected = true\n"
            "[environments.production.roles]\n"
            f'migration = "{n["migrator"]}"\napplication = ["{n["app"]}"]\n'
            f'readonly = ["{n["reader"]}"]\nbreak_glass = ["postgres"]\n'
            'superusers = ["postgres"]\n'
        )
        dsn = pg_cluster.dsn(sb.db)
        fix = tmp_path / "fix.sql"
        base = ("--database-url", dsn, "--env", "production", "--config", str(cfg))
        first = _audit(*base, "--fix-plan", str(fix))
        assert first.exit_code == 1, first.output
        text = fix.read_text()
        assert f'GRANT SELECT ON "public"."users" TO "{n["reader"]}";' in text
        assert f'GRANT SELECT ON "rpt"."signups" TO "{n["reader"]}";' in text
        assert f'GRANT USAGE ON SCHEMA "rpt" TO "{n["reader"]}";' in text
        assert "--database-url URL --dry-run" in text
        assert "add --restamp: pgwarden has never applied to this database" in text
        # the application never used users: the plan gives it nothing there (it used to
        # grant DML on every table of its schemas)
        assert f'ON "public"."users" TO "{n["app"]}"' not in text
        assert "ON ALL TABLES" not in text
        settings = load_settings(str(cfg))
        result = apply_plan(
            commands.load_plan([fix]),
            database_url=dsn,
            policy=GuardPolicy(env="production", yes=True, break_glass="test", restamp=True),
            settings=settings,
        )
        assert result.state == "done"
        # the read-only role reads what it read, and can no longer drop it
        assert sb.can("reader", "SELECT count(*) FROM users")
        assert sb.can("reader", "SELECT n FROM rpt.signups")
        assert not sb.can("reader", "DROP TABLE users")
        clean = _audit(*base, "--fix-plan", str(fix))
        assert clean.exit_code == 0, clean.output
        assert "nothing to fix, nothing to apply" in fix.read_text()
        assert "pgwarden apply" not in fix.read_text()
        # (warnings may name other tests' login roles: roles belong to the whole cluster)
        assert "login roles: 0 errors," in clean.stdout
        # a new slip on the database pgwarden now stamps: no --restamp in the plan
        with sb.connect(autocommit=True) as c:
            c.execute(f'GRANT INSERT ON users TO "{n["reader"]}"')
        again = _audit(*base, "--fix-plan", str(fix))
        assert again.exit_code == 1, again.output
        assert "login roles: 1 error," in again.stdout
        assert "--restamp" not in fix.read_text()
        assert f'REVOKE INSERT ON TABLE "public"."users" FROM "{n["reader"]}";' in fix.read_text()


def test_a_policy_naming_a_missing_role_says_which_one_was_meant(pg_cluster: Cluster) -> None:
    with sandbox(pg_cluster, "am", {"migrator": "LOGIN"}) as sb:
        typo = sb.n["migrator"].replace("migrator", "migrat0r")
        policy = RolePolicy(migration=typo, superusers=("postgres",))
        settings = Settings(environments={"staging": Environment("staging", False, policy)})
        report = audit(pg_cluster.dsn(sb.db), env="staging", settings=settings)
        found = [f.message for f in report.findings if f.code == "PW507"]
        assert found == [
            f"the role policy names {typo}, which does not exist on this server "
            f"(did you mean {sb.n['migrator']}?)"
        ]
        doc = json.loads(json.dumps(report.to_dict()))  # --format json says it too
        assert any("did you mean" in f["message"] for f in doc["findings"])


def test_functions_are_named_with_their_schema(pg_cluster: Cluster) -> None:
    """`owns function purge()` (the server's regprocedure under the session's search_path)
    while the same routine's definer path said `function public.purge()`."""
    with sandbox(pg_cluster, "af", {"migrator": "LOGIN", "app": "LOGIN"}) as sb:
        with sb.connect(autocommit=True) as c:
            c.execute(f'GRANT CREATE ON SCHEMA public TO "{sb.n["app"]}"')
        with sb.connect("app", autocommit=True) as c:
            c.execute("CREATE FUNCTION purge(n int) RETURNS int LANGUAGE sql AS 'SELECT n'")
        sb.protect("migrator", ("app",), "migrator")
        report = sb.audit()
        owns = [f.message for f in report.findings if f.code == "PW502" and f.role == sb.n["app"]]
        assert len(owns) == 1 and "owns function public.purge(integer)" in owns[0], owns
