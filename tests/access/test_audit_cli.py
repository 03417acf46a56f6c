"""`pgwarden audit` as a command: formats, exit codes, configuration errors, restore drills."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from pgwarden.backup import api as backup_api
from pgwarden.cli import cli

POLICY = """
[environments.production]
protected = true
[environments.production.roles]
migration = "postgres"
superusers = ["postgres"]
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args], env={"COLUMNS": "200"})


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pgwarden.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def public_create(db: str) -> str:
    """A database where PUBLIC may create in schema public (the pre-15 default)."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    return db


def test_without_a_policy_only_public_grants_are_warned_about(
    public_create: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, "[environments.staging]\nprotected = false\n")
    r = run(
        "--database-url", public_create, "--env", "staging", "--config", cfg, "--format", "json"
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    codes = {(f["code"], f["severity"]) for f in doc["findings"]}
    assert ("PW505", "warning") in codes and ("PW508", "note") in codes
    assert doc["policy"] is None and doc["environment"] == "staging"
    postgres = next(x for x in doc["roles"] if x["role"] == "postgres")
    assert "superuser" in {c["kind"] for c in postgres["capabilities"]}
    # --fix-plan needs a policy to fix towards
    r = run("--database-url", public_create, "--env", "staging", "--config", cfg,
            "--fix-plan", str(tmp_path / "x.sql"))  # fmt: skip
    assert r.exit_code == 2 and "needs a role policy" in r.output
    assert not (tmp_path / "x.sql").exists()


def test_sarif_and_github_carry_the_findings(public_create: str, tmp_path: Path) -> None:
    cfg = config(tmp_path, POLICY)
    base = ("--database-url", public_create, "--env", "production", "--config", cfg)
    r = run(*base, "--format", "sarif")
    assert r.exit_code == 1, r.output  # PUBLIC CREATE is an error in a protected environment
    log = json.loads(r.stdout)
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    public = next(x for x in results if x["ruleId"] == "PW505")
    assert public["level"] == "error"
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[public["ruleIndex"]]["id"] == "PW505"
    loc = public["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc["uri"].endswith("pgwarden.toml")
    r = run(*base, "--format", "github")
    assert r.exit_code == 1
    line = next(x for x in r.stdout.splitlines() if "PW505" in x)
    assert line.startswith("::error title=PW505 public-grant::PUBLIC")
    assert "%0Awhy: PUBLIC -> granted CREATE on schema public" in line


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ('application = "webapp"', "environments.production.roles.application must be a list"),
        ('aplication = ["webapp"]', "did you mean `environments.production.roles.application`"),
        ("migration = 3", "environments.production.roles.migration must be a role name"),
    ],
)
def test_a_bad_policy_is_a_usage_error(db: str, tmp_path: Path, roles: str, message: str) -> None:
    cfg = config(tmp_path, f"[environments.production.roles]\n{roles}\n")
    r = run("--database-url", db, "--env", "production", "--config", cfg)
    assert r.exit_code == 2
    assert message in r.output


def test_restore_drill_cadence(db: str, tmp_path: Path) -> None:
    catalogue = tmp_path / "backups"
    catalogue.mkdir()
    base = ("--database-url", db, "--env", "production", "--format", "json")

    def drill_finding(extra: str) -> tuple[int, dict[str, str]]:
        cfg = config(tmp_path, POLICY + f'[backup]\ncatalogue = "{catalogue}"\n{extra}')
        r = run(*base, "--config", cfg)
        doc = json.loads(r.stdout)
        return r.exit_code, next(f for f in doc["findings"] if f["code"] == "PW509")

    # no drill: a note without a configured cadence, an error with one (protected)
    code, f = drill_finding("")
    assert (code, f["severity"]) == (0, "note") and "no verified restore drill" in f["message"]
    code, f = drill_finding("drill_max_age_days = 7\n")
    assert (code, f["severity"]) == (1, "error")
    # a verified drill: reported with its backup id, fine within the limit
    m = backup_api.create(db, catalogue=catalogue, jobs=1)
    backup_api.verify(m.id, catalogue=catalogue, jobs=1)
    code, f = drill_finding("drill_max_age_days = 7\n")
    assert (code, f["severity"]) == (0, "note") and m.id in f["message"]
    # ... and overdue once older than the limit (here: 1 ms)
    code, f = drill_finding("drill_max_age_days = 0.00000001\n")
    assert (code, f["severity"]) == (1, "error") and "older than" in f["message"]
    cfg = config(tmp_path, POLICY + "[backup]\ndrill_max_age_days = -1\n")
    r = run(*base, "--config", cfg)
    assert r.exit_code == 2 and "drill_max_age_days must be a positive number" in r.output


def test_the_fix_plan_warns_about_schemas_the_application_would_lose(
    db: str, tmp_path: Path
) -> None:
    app = f"billing_app_{os.getpid()}"
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(app)))
        c.execute(sql.SQL("CREATE SCHEMA billing AUTHORIZATION {}").format(sql.Identifier(app)))
        c.execute(sql.SQL("CREATE TABLE billing.invoices (id int)"))
        c.execute(sql.SQL("ALTER TABLE billing.invoices OWNER TO {}").format(sql.Identifier(app)))
    try:
        cfg = config(tmp_path, POLICY + f'application = ["{app}"]\n')
        plan = tmp_path / "fix.sql"
        r = run("--database-url", db, "--env", "production", "--config", cfg,
                "--fix-plan", str(plan))  # fmt: skip
        assert r.exit_code == 1
        assert f"application role {app} owns objects in schema billing" in r.stderr
        assert "-- not fixed here: application role" in plan.read_text()
    finally:
        with psycopg.connect(db, autocommit=True) as c:
            c.execute(sql.SQL("DROP SCHEMA billing CASCADE"))
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(app)))


def test_the_environment_is_checked_like_apply_checks_it(db: str, tmp_path: Path) -> None:
    from pgwarden.apply.identity import stamp_database

    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "production", protected=True, by="tests")
    cfg = config(tmp_path, POLICY)
    r = run("--database-url", db, "--env", "prod", "--config", cfg)
    assert r.exit_code == 2 and "did you mean --env production" in r.output
    # without --env: the stamp's environment and protection
    r = run("--database-url", db, "--config", cfg, "--format", "json")
    doc = json.loads(r.stdout)
    assert (doc["environment"], doc["protected"]) == ("production", True)
    # a role that may not read the stamp must say which environment it audits
    role = f"nostamp_{os.getpid()}"
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        dsn = f"{db} user={role}"
        r = run("--database-url", dsn, "--config", cfg)
        assert r.exit_code == 2 and "may not read the database's pgwarden stamp" in r.output
        r = run("--database-url", dsn, "--config", cfg, "--env", "production", "--format", "json")
        assert json.loads(r.stdout)["connected_as"] == role
    finally:
        with psycopg.connect(db, autocommit=True) as c:
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
