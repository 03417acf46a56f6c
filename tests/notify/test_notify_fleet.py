"""`pgwarden fleet apply` notifies a real receiver: started, then failed when a target of
the canary wave fails and the rollout halts; `fleet resume` then ends with done."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.apply.identity import stamp_database
from pgwarden.pg.cluster import Cluster
from tests.fixtures.run import pgwarden
from tests.notify.receiver import receiver

TOML = """\
[environments.staging]
protected = false

[fleet.tenants]
order = "name"
journal_dir = "{journal}"
bake_s = 0
targets = [
  {{ name = "t1", dsn_env = "NOTIFY_FLEET_T1" }},
  {{ name = "t2", dsn_env = "NOTIFY_FLEET_T2" }},
]
[[fleet.tenants.waves]]
name = "canary"
count = 1
[[fleet.tenants.waves]]
name = "rest"
percent = 100

[[notify.webhooks]]
url_env = "HOOK_URL"
"""


def _fleet(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return pgwarden("fleet", *args, "--fleet", "tenants", cwd=cwd, env=env, timeout=180)


def test_a_halted_rollout_notifies_failed_and_its_resume_done(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    env = {**os.environ, "COLUMNS": "500"}
    for name in ("t1", "t2"):
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"notify_fleet_{name}")))
        dsn = pg_cluster.dsn(f"notify_fleet_{name}")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE accounts (id int PRIMARY KEY)")
            stamp_database(c, "staging", protected=False, by="notify-tests")
        env[f"NOTIFY_FLEET_{name.upper()}"] = dsn
    with psycopg.connect(env["NOTIFY_FLEET_T1"], autocommit=True) as c:
        c.execute("ALTER TABLE accounts ADD COLUMN note text")  # the change fails on t1
    (tmp_path / "pgwarden.toml").write_text(TOML.format(journal=tmp_path / "journal"))
    (tmp_path / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN note text;\n")
    with receiver() as rx:
        env["HOOK_URL"] = rx.url
        halted = _fleet(tmp_path, env, "apply", "001.sql", "--env", "staging")
        first = list(rx.requests)
        with psycopg.connect(env["NOTIFY_FLEET_T1"], autocommit=True) as c:
            c.execute("ALTER TABLE accounts DROP COLUMN note")
        resumed = _fleet(tmp_path, env, "resume", "--env", "staging")
        second = rx.requests[len(first) :]
    assert halted.returncode != 0, halted.stdout + halted.stderr
    assert [r["notification"] for r in first] == ["started", "failed"], first
    assert first[0]["command"] == "fleet apply" and first[0]["environment"] == "staging"
    assert first[1]["event"]["event"] == "fleet_halted", first[1]
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    kinds = [r["notification"] for r in second]
    assert kinds[0] == "started" and kinds[-1] == "done" and "failed" not in kinds, kinds
