"""Issue 15, done when: a real multi-app Django project with a long history, upgraded.

wagtail (the `test-django-real` extra pins it and Django) is migrated to the
migration leaves of its 4.1 LTS release and loaded with thousands of rows
(`manage.py wagtailrelease`, tests/contrib/django_wagtail); the upgrade to the
installed release is 42 migrations over 8 apps, through wagtail 5, 6 and 7,
with RunPython data migrations (workflow states, page permissions, log entry
JSON), unique_together churn and tables dropped and moved between apps.
The database is copied (CREATE DATABASE ... TEMPLATE) for each run:

- `manage.py pgwarden lint --unapplied` covers every pending migration in one run,
  and its lock and destruction hazards are those of the SQL Django's own `migrate`
  executes on a twin (captured with connection.execute_wrapper), migration by
  migration, counted;
- one `manage.py pgwarden migrate` leaves the schema (pg_dump), django_migrations,
  content types, permissions and the rows the RunPython migrations rewrote exactly
  as plain `migrate` leaves them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from itertools import count
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster

pytest.importorskip("wagtail")

PROJECT = Path(__file__).parent / "django_wagtail"
SRC = Path(__file__).parents[2] / "src"
_copies = count(1)

# hazards that follow from the SQL text and whether its table existed before the run
HAZARDS = ("PW101", "PW102", "PW103", "PW201", "PW202")


def manage(dsn: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=dsn, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(result: subprocess.CompletedProcess[str], *codes: int) -> str:
    assert result.returncode in (codes or (0,)), result.stdout + result.stderr
    return result.stdout


def copy_of(cluster: Cluster, template: str) -> str:
    return cluster.create_database(f"wagtail_copy_{next(_copies)}", template=template)


@pytest.fixture(scope="module")
def release(pg_cluster: Cluster) -> str:
    """Name of a database as a wagtail 4.1 site left it, with rows (used as a template)."""
    dsn = pg_cluster.create_database("wagtail_4_1")
    ok(manage(dsn, "wagtailrelease"))
    return "wagtail_4_1"


def outcome(dsn: str, cluster: Cluster) -> dict[str, Any]:
    """What an upgrade leaves: the schema, history, content types, permissions and the
    rows the RunPython migrations wrote (workflow states, page permissions, log entries)."""
    dump = subprocess.run(
        [str(cluster.installation.tool("pg_dump")), "--schema-only", "--no-owner",
         "--exclude-schema", "pgwarden", dsn],
        capture_output=True, text=True, check=True, env=cluster.tool_env(),
    ).stdout  # fmt: skip
    schema = [line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unres"))]
    with psycopg.connect(dsn) as conn:

        def rows(query: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(query).fetchall()]

        return {
            "schema": schema,
            "migrations": rows("SELECT app, name FROM django_migrations ORDER BY 1, 2"),
            "content_types": rows("SELECT app_label, model FROM django_content_type ORDER BY 1, 2"),
            "permissions": rows(
                "SELECT c.app_label, p.codename FROM auth_permission p "
                "JOIN django_content_type c ON c.id = p.content_type_id ORDER BY 1, 2"
            ),
            "group_permissions": rows(
                "SELECT g.name, p.codename FROM auth_group_permissions gp JOIN auth_group g "
                "ON g.id = gp.group_id JOIN auth_permission p ON p.id = gp.permission_id "
                "ORDER BY 1, 2"
            ),
            "data": rows(
                "SELECT 'workflowstate', md5(string_agg(concat_ws(',', w.id, c.model, "
                "w.object_id, w.status), ';' ORDER BY w.id)) FROM wagtailcore_workflowstate w "
                "JOIN django_content_type c ON c.id = w.content_type_id UNION ALL "
                "SELECT 'grouppagepermission', md5(string_agg(concat_ws(',', gp.id, "
                "gp.page_id, p.codename), ';' ORDER BY gp.id)) FROM "
                "wagtailcore_grouppagepermission gp JOIN auth_permission p "
                "ON p.id = gp.permission_id UNION ALL "
                "SELECT 'pagelogentry', md5(string_agg(concat_ws(',', id, data::text), ';' "
                "ORDER BY id)) FROM wagtailcore_pagelogentry"
            ),
        }


@pytest.fixture(scope="module")
def plain(pg_cluster: Cluster, release: str) -> dict[str, Any]:
    """Plain `manage.py migrate` on a twin: what it executed, per migration, and what it left."""
    twin = copy_of(pg_cluster, release)
    with psycopg.connect(twin) as conn:
        before = {
            r[0]
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace"
            )
        }
    captured: dict[str, Any] = json.loads(ok(manage(twin, "migratecapture")))
    return {"tables": before, **captured, "outcome": outcome(twin, pg_cluster)}


def ddl(rows: list[list[str]]) -> list[tuple[str, str]]:
    out = []
    for key, sql in rows:
        text = " ".join(sql.split()).rstrip(";").strip()
        if text.upper().startswith(("CREATE ", "ALTER ", "DROP ", "SET CONSTRAINTS ")):
            out.append((key, text))
    return out


def hazards_of(executed: list[tuple[str, str]], tables: set[str]) -> Counter[tuple[str, str]]:
    """(migration, code) of each statement Django executed that locks or destroys an
    existing table: a plain index build, a validated FK, SET NOT NULL, a dropped table
    or column (tables the run creates are new and empty: no hazard)."""
    found: Counter[tuple[str, str]] = Counter()
    for key, sql in executed:
        m = re.match(r'CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)"[^"]+" ON "([^"]+)"', sql)
        if m and m.group(2) in tables:
            found[key, "PW101"] += 1
        m = re.match(r'DROP TABLE "([^"]+)"', sql)
        if m and m.group(1) in tables:
            found[key, "PW201"] += 1
        m = re.match(r'ALTER TABLE "([^"]+)" (.*)', sql)
        if m and m.group(1) in tables:
            rest = m.group(2)
            found[key, "PW102"] += "FOREIGN KEY" in rest and "NOT VALID" not in rest
            found[key, "PW103"] += "SET NOT NULL" in rest
            found[key, "PW202"] += "DROP COLUMN" in rest
    return +found


def test_lint_unapplied_reports_what_migrate_executes(
    pg_cluster: Cluster, release: str, plain: dict[str, Any]
) -> None:
    """Every pending migration of a 4.1 -> current upgrade lints in one run (was: a
    crash, or per-app runs), the SQL pgwarden renders is the SQL `migrate` executes,
    statement for statement and migration by migration, and the index, FK, NOT NULL
    and drop hazards reported are exactly those of the executed SQL: none missed
    (wagtailcore 0082, 0090), none for SQL Django never runs."""
    dsn = copy_of(pg_cluster, release)
    todo = plain["plan"]  # what `migrate` applied on the twin, in its order
    assert len(todo) >= 40 and len({k.split(".")[0] for k in todo}) >= 8, todo
    out = manage(dsn, "pgwarden", "lint", "--unapplied", "--format", "json", "--fail-on", "never")
    doc = json.loads(ok(out))
    assert [f"{m['app']}.{m['name']}" for m in doc["migrations"]] == todo

    executed = ddl(plain["executed"])
    assert ddl(plain["rendered"]) == executed
    assert len(executed) > 100

    key_of = {m["path"]: f"{m['app']}.{m['name']}" for m in doc["migrations"]}
    reported = Counter(
        (key_of[f["location"]["path"]], f["code"]) for f in doc["findings"] if f["code"] in HAZARDS
    )
    expected = hazards_of(executed, plain["tables"])
    assert reported == expected
    # the ones issue 15 saw missed or invented
    assert reported["wagtailcore.0082_alter_workflowstate_content_type_notnull", "PW102"] == 2
    assert reported["wagtailcore.0090_remove_grouppagepermission_permission_type", "PW102"] == 1
    ran = {key for key, _ in executed}
    assert {key_of[f["location"]["path"]] for f in doc["findings"]} <= ran


def test_pgwarden_migrate_leaves_what_plain_migrate_leaves(
    pg_cluster: Cluster, release: str, plain: dict[str, Any], tmp_path: Path
) -> None:
    """One `manage.py pgwarden migrate` (no per-app split) runs the 42 migrations, the
    RunPython ones through Django's executor between the guarded SQL, and sends
    pre_/post_migrate: same schema, history, content types, permissions and rewritten
    rows as plain `migrate` on the twin (its django_migrations: every migration, so
    `migrate --check` agrees). What a later part would refuse is refused before the
    first part runs."""
    dsn = copy_of(pg_cluster, release)
    argv = ["pgwarden", "migrate", "--env", "test", "--yes", "--restamp",
            "--journal-file", str(tmp_path / "journal.jsonl")]  # fmt: skip
    with psycopg.connect(dsn) as conn:
        history = conn.execute("SELECT count(*) FROM django_migrations").fetchone()
    # 'test' is protected: wagtailcore 0090 (after three RunPython parts) drops a column,
    # with no verified backup. Refused before anything runs, not half-way (was: 16
    # migrations applied, then refused at 0090).
    refused = manage(dsn, *argv)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "refused before anything ran (42 migrations" in refused.stderr
    assert "wagtailcore_grouppagepermission.permission_type" in refused.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM django_migrations").fetchone() == history

    out = manage(dsn, *argv, "--accept-data-loss", "wagtail upgrade test")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "wagtailcore.0081_populate_workflowstate_content_type through Django's" in out.stdout
    got = outcome(dsn, pg_cluster)
    expected = plain["outcome"]
    for part in expected:
        assert got[part] == expected[part], part
