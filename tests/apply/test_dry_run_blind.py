"""`apply --dry-run` shows the plan even where a real run would stop: a role that may not
read pgwarden's schema, a database with data but no stamp; and its listing says which
statements run on their own."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import psycopg
import pytest

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.errors import DatabaseError, Refused
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import plan_of, scalar, write_sql
from tests.fixtures.run import pgwarden

SETTINGS = Settings(environments={"staging": Environment("staging")})
CONFIG = "[environments.staging]\nprotected = false\n"
PLAN = "CREATE INDEX ON invoices (amount);\nALTER TABLE invoices ADD COLUMN note text;\n"


def _env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "400"}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        env.pop(var, None)
    return env


@pytest.fixture
def reader(shop: str, tmp_path: Path) -> str:
    """The DSN of a login role that may read `invoices` but not schema pgwarden, which a
    first apply created as the superuser."""
    first = write_sql(tmp_path, "CREATE TABLE first_run (id int);\n", "000_first.sql")
    apply_plan(
        plan_of(first), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="staging")
    )
    role = f"dryrun_{secrets.token_hex(3)}"
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN".encode())
        c.execute(f"GRANT SELECT ON invoices TO {role}".encode())
    return shop.replace("user=postgres", f"user={role}")


def test_a_role_that_cannot_read_the_journal_still_sees_the_plan(
    reader: str, tmp_path: Path
) -> None:
    path = write_sql(tmp_path, PLAN, "001_note.sql")
    result = apply_plan(
        plan_of(path),
        database_url=reader,
        settings=SETTINGS,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(dry_run=True),
    )
    assert result.state == "dry-run" and result.environment == "staging"
    assert [s.state for s in result.steps] == ["unknown", "unknown"]
    assert result.steps[0].locks == ("SHARE on invoices",)
    assert result.steps[0].lock_timeout_ms == 500
    assert [(f.step, f.code) for f in result.findings] == [(0, "PW101")]  # no PW120: the guard's
    (warning,) = result.warnings
    role = reader.split("user=")[1]
    assert f"role {role} cannot read schema pgwarden" in warning
    assert "which steps are already applied" in warning
    assert f"GRANT USAGE ON SCHEMA pgwarden TO {role}" in warning
    # A real run as this role stops before changing anything, as the warning says.
    with pytest.raises(DatabaseError, match="cannot read schema pgwarden") as err:
        apply_plan(
            plan_of(path), database_url=reader, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    assert err.value.exit_code == 2
    note = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'invoices'::regclass "
    assert scalar(reader, note + "AND attname = 'note'") == 0

    # The command line: exit 0, the plan on stdout, what could not be read on stderr.
    (tmp_path / "pgwarden.toml").write_text(CONFIG)
    cli = pgwarden(
        "apply", str(path), "--database-url", reader, "--env", "staging", "--dry-run",
        cwd=tmp_path, env=_env(),
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "unknown CREATE INDEX ON invoices (amount)" in cli.stdout
    assert "error PW101 index-built-without-concurrently: builds an index" in cli.stdout
    assert "lint: 1 error, 0 warnings on the steps to run" in cli.stdout
    assert "unknown ALTER TABLE invoices ADD COLUMN note text" in cli.stdout
    assert f"role {role} cannot read schema pgwarden" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_a_dry_run_on_data_without_a_stamp_previews_and_says_what_is_refused(
    db: str, tmp_path: Path
) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE invoices (id int, amount numeric)")
        c.execute("INSERT INTO invoices VALUES (1, 2)")
    path = write_sql(tmp_path, PLAN, "001_note.sql")
    result = apply_plan(
        plan_of(path),
        database_url=db,
        settings=SETTINGS,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(dry_run=True),
    )
    assert [s.state for s in result.steps] == ["pending", "pending"]
    (warning,) = result.warnings
    assert "a real run would be refused" in warning and "no pgwarden stamp" in warning
    assert "--restamp --env staging" in warning
    with pytest.raises(Refused, match="no pgwarden stamp"):
        apply_plan(
            plan_of(path), database_url=db, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    assert scalar(db, "SELECT to_regclass('pgwarden.runs')") is None


def test_the_listing_marks_statements_that_run_on_their_own(tmp_path: Path) -> None:
    # --rewrite moves CREATE INDEX CONCURRENTLY out of the file's transaction and
    # VALIDATE after it: neither may be listed under a transaction's header.
    path = write_sql(
        tmp_path,
        "CREATE TABLE a (id int PRIMARY KEY);\n"
        "CREATE INDEX ON invoices (amount);\n"
        "ALTER TABLE invoices ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES a (id);\n",
        "002_fk.sql",
    )
    cli = pgwarden("apply", str(path), "--rewrite", "--dry-run", cwd=tmp_path, env=_env())
    assert cli.returncode == 0, cli.stderr
    listing = [line.split(" (")[0].strip() for line in cli.stdout.splitlines()[5:]]
    assert listing == [
        "-- each statement on its own",
        "0 pending CREATE INDEX CONCURRENTLY ON invoices",
        "-- transaction 0",
        "1 pending CREATE TABLE a",
        "2 pending ALTER TABLE invoices ADD CONSTRAINT fk FOREIGN KEY",
        "-- each statement on its own",
        "3 pending ALTER TABLE invoices VALIDATE CONSTRAINT fk",
        "dry run: nothing was executed",
    ], cli.stdout


def test_findings_are_shown_for_the_steps_still_to_run_only(shop: str, tmp_path: Path) -> None:
    done = write_sql(tmp_path, "CREATE INDEX ON invoices (created_at);\n", "001_index.sql")
    apply_plan(
        plan_of(done), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="staging")
    )
    more = write_sql(tmp_path, "UPDATE invoices SET status = 'x';\n", "002_update.sql")
    plan = commands.load_plan([done, more], file_transaction=True)
    result = apply_plan(
        plan,
        database_url=shop,
        settings=SETTINGS,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(dry_run=True),
    )
    assert [s.state for s in result.steps] == ["applied", "pending"]
    assert {f.code for f in result.findings} == {"PW140"}  # not 001's PW101: it ran
    assert all(f.step == 1 for f in result.findings)
    ignoring = Settings(environments=SETTINGS.environments, ignore=("PW140",))
    quiet = apply_plan(
        plan,
        database_url=shop,
        settings=ignoring,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(dry_run=True),
    )
    assert quiet.findings == ()  # the configuration's ignores hold, as in `pgwarden lint`


def test_transactions_are_numbered_in_the_order_they_run(tmp_path: Path) -> None:
    # --rewrite splits 002's transaction (its SET NOT NULL's CHECK goes in a new one),
    # whose id comes after 003's: listed as they run, 0, 1, 2, 3.
    write_sql(tmp_path, "CREATE TABLE a (id int);\n", "001.sql")
    write_sql(
        tmp_path,
        "ALTER TABLE invoices ADD COLUMN status text NOT NULL DEFAULT 'open';\n"
        "CREATE INDEX invoices_status_idx ON invoices (status);\n"
        "ALTER TABLE invoices ALTER COLUMN amount SET NOT NULL;\n",
        "002.sql",
    )
    write_sql(
        tmp_path,
        "ALTER TABLE invoices DROP CONSTRAINT c1;\n"
        "ALTER TABLE invoices ADD CONSTRAINT c1 FOREIGN KEY (a_id) REFERENCES a (id);\n",
        "003.sql",
    )
    cli = pgwarden("apply", ".", "--rewrite", "--dry-run", cwd=tmp_path, env=_env())
    assert cli.returncode == 0, cli.stderr
    numbered = [ln for ln in cli.stdout.splitlines() if ln.startswith("-- transaction")]
    assert numbered == [f"-- transaction {n}" for n in range(4)], cli.stdout
