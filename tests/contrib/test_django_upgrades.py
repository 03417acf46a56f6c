"""`manage.py pgwarden` on a multi-app project upgraded with several apps pending (issue 15).

tests/contrib/django_multi: apps alpha and beta, a cross-app foreign key,
unique_together added in one migration and removed in the next, an `operations`
list under an `if`, a migration with RunPython between an AddField and an
AlterField, and django.contrib.contenttypes / auth (post_migrate creates rows).
Django runs in subprocesses; the SQL pgwarden renders is compared with the SQL
Django's own `migrate` executes on the same database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"
SRC = Path(__file__).parents[2] / "src"
PENDING = [
    "alpha.0002_author_email",
    "alpha.0003_author_unique_together",
    "alpha.0004_remove_unique_together",
    "alpha.0005_author_email_idx",
    "alpha.0006_author_slug",
    "beta.0002_book_bar",
    "beta.0003_book_editor",
    "beta.0004_shelf",
]


def manage(
    dsn: str, *args: str, cwd: Path = PROJECT, contrib: bool = False
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["MULTISITE_CONTRIB"] = "1" if contrib else ""
    env["PGWARDEN_DJANGO_DSN"] = dsn
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def ok(result: subprocess.CompletedProcess[str], *codes: int) -> str:
    assert result.returncode in (codes or (0,)), result.stdout + result.stderr
    return result.stdout


def line_of(app: str, migration: str, needle: str) -> int:
    text = (PROJECT / app / "migrations" / f"{migration}.py").read_text().splitlines()
    return next(i for i, t in enumerate(text, 1) if needle in t)


def released(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """The database as the last release left it: contenttypes and auth migrated, alpha
    0001 and beta 0001, with rows."""
    for target in (["auth"], ["beta", "0001"]):
        ok(manage(dsn, "migrate", *target, "--verbosity", "0"))
    conn.execute("INSERT INTO alpha_author (name) SELECT 'a' || g FROM generate_series(1, 50) g")
    conn.execute(
        "INSERT INTO beta_book (title, author_id) "
        "SELECT 'b' || g, (SELECT min(id) FROM alpha_author) FROM generate_series(1, 200) g"
    )


def lint_json(dsn: str, *args: str) -> dict[str, Any]:
    out = ok(manage(dsn, "pgwarden", "lint", *args, "--format", "json"), 0, 1)
    doc: dict[str, Any] = json.loads(out)
    return doc


def keys(doc: dict[str, Any]) -> list[str]:
    return [f"{m['app']}.{m['name']}" for m in doc["migrations"]]


def test_unapplied_with_several_apps_pending_lints_in_one_run(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    """#15.1: the state starts from every applied migration, not the first pending one's
    ancestors (was: KeyError ('beta', 'bar') / "Django could not generate the SQL")."""
    released(db, conn)
    doc = lint_json(db, "--unapplied")
    assert keys(doc) == PENDING
    # One app only: its migrations, rendered after the other apps' pending ones.
    assert keys(lint_json(db, "--unapplied", "beta")) == PENDING[5:]


def test_rendered_sql_is_what_migrate_executes(db: str, conn: psycopg.Connection[Any]) -> None:
    """#15.3: each pending migration is rendered against what the ones before it leave
    (unique_together added then removed; FK added nullable then made NOT NULL), and
    the DDL is exactly what Django's `migrate` executes on the same database."""
    released(db, conn)
    rendered = json.loads(ok(manage(db, "sqlcompare", "rendered")))
    executed = json.loads(ok(manage(db, "sqlcompare", "executed")))
    assert rendered == executed
    # The FK of beta 0003 is dropped and re-added (validated) around SET NOT NULL.
    assert any('"beta_book" DROP CONSTRAINT "beta_book_editor_id' in s for s in executed)


def test_lint_finds_the_fk_revalidated_by_alterfield(
    db: str, conn: psycopg.Connection[Any]
) -> None:
    """#15.3: pending AddField FK(null=True) + AlterField(null=False): Django drops and
    re-adds the FK, validated under lock (PW102), not only the SET NOT NULL (PW103)."""
    released(db, conn)
    doc = lint_json(db, "--unapplied")
    at = line_of("beta", "0003_book_editor", "migrations.AlterField(")
    codes = {
        f["code"]
        for f in doc["findings"]
        if f["location"]["path"].endswith("0003_book_editor.py") and f["location"]["line"] == at
    }
    assert {"PW102", "PW103"} <= codes, doc["findings"]


def test_lint_from_zero_with_unique_together_churn(db: str) -> None:
    """#15.2: from zero, constraint names come from the SQL before, not the empty
    database (was: "Found wrong number (0) of constraints"), for every app and per app."""
    doc = lint_json(db)
    assert "alpha.0004_remove_unique_together" in keys(doc)
    assert len(keys(doc)) > len(PENDING)
    beta = lint_json(db, "beta")
    assert keys(beta) == ["beta.0001_initial", *PENDING[5:]]


def test_operations_under_if_point_at_the_operation(db: str, conn: psycopg.Connection[Any]) -> None:
    """#15.9: `operations` assigned inside an `if`: the finding is at the AddIndex line,
    not at `class Migration`."""
    released(db, conn)
    doc = lint_json(db, "--unapplied", "alpha")
    (idx,) = [
        f
        for f in doc["findings"]
        if f["code"] == "PW101" and f["location"]["path"].endswith("0005_author_email_idx.py")
    ]
    assert idx["location"]["line"] == line_of("alpha", "0005_author_email_idx", "AddIndex(")


def pgwarden_migrate(dsn: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    journal = str(tmp / "journal.jsonl")
    return manage(dsn, "pgwarden", "migrate", "--env", "test", "--yes", "--journal-file", journal,
                  *args)  # fmt: skip


def outcome(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What `migrate` leaves: history, content types, permissions, the beta_book columns."""

    def rows(query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(query).fetchall()]

    return {
        "migrations": rows("SELECT app, name FROM django_migrations ORDER BY app, name"),
        "content_types": rows("SELECT app_label, model FROM django_content_type ORDER BY 1, 2"),
        "permissions": rows("SELECT codename FROM auth_permission ORDER BY 1"),
        "columns": rows(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ),
        "constraints": rows(
            "SELECT conrelid::regclass::text, conname, contype, convalidated FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ),
        "indexes": rows("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"),
    }


def test_migrate_runs_python_in_order_and_sends_post_migrate(
    db: str, conn: psycopg.Connection[Any], pg_cluster: Cluster, tmp_path: Path
) -> None:
    """#15.4 + #15.5: one `pgwarden migrate` runs beta 0003 (AddField, RunPython,
    AlterField) through Django's executor between the guarded SQL, and sends
    pre_/post_migrate: the same history, content types, permissions and schema as
    plain `migrate` (was: refused, "runs Python"; after a split run, no content type
    or permissions for beta.shelf)."""
    released(db, conn)
    plain = new_database(pg_cluster)
    with psycopg.connect(plain, autocommit=True) as other:
        released(plain, other)
        ok(manage(plain, "migrate", "--verbosity", "0"))
        expected = outcome(other)
    out = pgwarden_migrate(db, tmp_path, "--restamp")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "beta.0003_book_editor through Django's executor" in out.stdout
    assert outcome(conn) == expected
    assert ("beta", "shelf") in expected["content_types"]
    assert ("add_shelf",) in expected["permissions"]
    # RunPython ran after 0003's AddField and before its AlterField (NOT NULL held).
    same = conn.execute("SELECT bool_and(editor_id = author_id) FROM beta_book").fetchone()
    assert same == (True,)
    # alpha 0006 (atomic = False): AddField, RunPython backfill, then RunSQL CREATE INDEX
    # CONCURRENTLY, in that order through Django's executor: every slug filled, index valid.
    assert "alpha.0006_author_slug through Django's executor" in out.stdout
    slugs = conn.execute("SELECT count(*) FROM alpha_author WHERE slug = lower(name)").fetchone()
    assert slugs == (50,)
    valid = conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'alpha_author_slug_idx'::regclass"
    ).fetchone()
    assert valid == (True,)
    assert ok(manage(db, "migrate", "--check")) is not None
    again = pgwarden_migrate(db, tmp_path)
    assert again.returncode == 0 and "no migrations to apply" in again.stdout


def test_target_is_checked_before_django_runs_a_python_migration_first(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """#15.5: when the next migration runs Python, the identity guard still runs first:
    the wrong --env is refused before Django's executor touches the database."""
    released(db, conn)
    first = pgwarden_migrate(db, tmp_path, "alpha", "--restamp")
    assert first.returncode == 0, first.stdout + first.stderr
    second = pgwarden_migrate(db, tmp_path, "beta", "0002")
    assert second.returncode == 0, second.stdout + second.stderr  # next: beta 0003, Python
    journal = str(tmp_path / "journal.jsonl")
    wrong = manage(db, "pgwarden", "migrate", "--env", "production", "--yes",
                   "--journal-file", journal)  # fmt: skip
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "stamped" in wrong.stderr + wrong.stdout
    editor = conn.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'beta_book' AND column_name = 'editor_id'"
    ).fetchone()
    assert editor == (0,)
    right = pgwarden_migrate(db, tmp_path)
    assert right.returncode == 0, right.stdout + right.stderr
    ok(manage(db, "migrate", "--check"))


def test_python_migration_waiting_for_a_lock_is_retried(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """#15.5: a migration Django's executor runs waits at most --lock-timeout-ms for a
    lock, rolls back and retries (atomic), instead of queueing traffic behind it."""
    released(db, conn)
    for target in (("alpha", "--restamp"), ("beta", "0002")):
        done = pgwarden_migrate(db, tmp_path, *target)
        assert done.returncode == 0, done.stdout + done.stderr
    err = tmp_path / "stderr.txt"
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=db, MULTISITE_CONTRIB="")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with psycopg.connect(db) as blocker, err.open("w") as sink:
        blocker.execute("LOCK TABLE beta_book IN SHARE MODE")  # beta 0003's AddField waits
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT / "manage.py"), "pgwarden", "migrate", "--env", "test",
             "--yes", "--lock-timeout-ms", "100", "--journal-file",
             str(tmp_path / "journal.jsonl")],
            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=sink, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "retry 2/" not in err.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            assert proc.poll() is None, err.read_text()  # still retrying, not failed
            blocker.rollback()
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, out + err.read_text()
    assert "beta.0003_book_editor: lock_timeout (100 ms)" in err.read_text()
    ok(manage(db, "migrate", "--check"))


def test_migrate_dry_run_names_the_python_part(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """#15.5: the dry run shows the SQL parts and names what Django's executor runs."""
    released(db, conn)
    out = pgwarden_migrate(db, tmp_path, "--restamp", "--dry-run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "through Django's executor between the guarded parts: beta.0003_book_editor" in (
        out.stdout
    )
    before = conn.execute("SELECT count(*) FROM django_migrations").fetchone()
    assert before is not None
    assert "beta.0004_shelf" not in str(before)


def test_traceback_after_the_subcommand_keeps_the_original_exception(db: str) -> None:
    """#15.9: `--traceback` is accepted after the subcommand and shows the chain."""
    out = manage(db, "pgwarden", "lint", "nosuchapp", "--traceback")
    assert "unrecognized arguments" not in out.stderr
    assert "Traceback" in out.stderr and "nosuchapp" in out.stderr
    plain = manage(db, "pgwarden", "lint", "nosuchapp")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr


def test_ignore_sources_by_app_and_path_with_a_reason(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """#15.6: findings of migrations you do not own are suppressed by app label or path
    glob in the configuration, each with its reason (was: only by switching a rule off)."""
    released(db, conn)
    config = tmp_path / "pgwarden.toml"
    config.write_text(
        "[[ignore_sources]]\n"
        'app = "alpha"\n'
        'reason = "third-party app, reviewed upstream"\n'
        "[[ignore_sources]]\n"
        'path = "*/beta/migrations/0003_*"\n'
        'rules = ["PW102"]\n'
        'reason = "books is small"\n'
    )
    before = lint_json(db, "--unapplied")
    after = lint_json(db, "--unapplied", "--config", str(config))
    paths = {f["location"]["path"] for f in after["findings"]}
    assert not [p for p in paths if p.startswith("alpha/")]
    assert [f for f in before["findings"] if f["location"]["path"].startswith("alpha/")]
    beta3 = {f["code"] for f in after["findings"] if "0003_book_editor" in f["location"]["path"]}
    assert "PW102" not in beta3 and "PW103" in beta3
    assert after["summary"]["suppressed"] == len(before["findings"]) - len(after["findings"])

    config.write_text('[[ignore_sources]]\napp = "alpha"\n')
    bad = manage(db, "pgwarden", "lint", "--unapplied", "--config", str(config))
    assert bad.returncode == 2 and "gives no reason" in bad.stderr, bad.stdout + bad.stderr


CONTRIB_RELEASED = [
    ["contenttypes", "0001"],
    ["auth", "0001"],
    ["sites", "0001"],
    ["flatpages", "0001"],
    ["redirects", "0001"],
    ["sessions", "0001"],
    ["admin", "0001"],
    ["beta", "0001"],
]


def contrib_released(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """Django's contrib apps at their first migrations, as an old release left them, with rows."""
    for target in CONTRIB_RELEASED:
        ok(manage(dsn, "migrate", *target, "--verbosity", "0", contrib=True))
    conn.execute(
        "INSERT INTO auth_user (password, last_login, is_superuser, username, first_name, "
        "last_name, email, is_staff, is_active, date_joined) SELECT 'x', now(), false, "
        "'u' || g, '', '', 'u' || g || '@example.com', false, true, now() "
        "FROM generate_series(1, 2000) g"
    )
    conn.execute(
        "INSERT INTO django_redirect (site_id, old_path, new_path) "
        "SELECT (SELECT min(id) FROM django_site), '/old/' || g, '/new/' || g "
        "FROM generate_series(1, 500) g"
    )
    conn.execute(
        "INSERT INTO django_admin_log (action_time, user_id, content_type_id, object_id, "
        "object_repr, action_flag, change_message) SELECT now(), u.id, "
        "(SELECT min(id) FROM django_content_type), u.id::text, 'u', 1, '' "
        "FROM auth_user u"
    )


def test_django_contrib_apps_upgraded_from_their_first_migrations(
    db: str, conn: psycopg.Connection[Any], pg_cluster: Cluster, tmp_path: Path
) -> None:
    """#15.1-5 on real third-party migrations: Django's own contrib apps (contenttypes,
    auth, admin, sites, flatpages, redirects, sessions) at their 0001 with rows, plus
    alpha/beta: 24 pending migrations over 7 apps, RunPython (contenttypes 0002,
    auth 0011), cross-app FKs. One lint run covers them all; the rendered DDL is the
    DDL plain `migrate` executes; one `pgwarden migrate` leaves what plain `migrate`
    leaves (history, content types, permissions, columns, constraints, indexes)."""
    contrib_released(db, conn)
    doc = json.loads(
        ok(manage(db, "pgwarden", "lint", "--unapplied", "--format", "json", contrib=True), 0, 1)
    )
    assert len(doc["migrations"]) == 24
    assert {m["app"] for m in doc["migrations"]} == {
        "admin", "alpha", "auth", "beta", "contenttypes", "redirects", "sites"
    }  # fmt: skip

    copy = new_database(pg_cluster)
    with psycopg.connect(copy, autocommit=True) as other:
        contrib_released(copy, other)
        rendered = json.loads(ok(manage(copy, "sqlcompare", "rendered", contrib=True)))
        executed = json.loads(ok(manage(copy, "sqlcompare", "executed", contrib=True)))
        assert rendered == executed
        expected = outcome(other)

    out = manage(db, "pgwarden", "migrate", "--env", "test", "--yes", "--restamp",
                 "--journal-file", str(tmp_path / "journal.jsonl"), contrib=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "contenttypes.0002_remove_content_type_name" in out.stdout
    assert outcome(conn) == expected
    ok(manage(db, "migrate", "--check", contrib=True))
