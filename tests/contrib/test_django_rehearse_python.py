"""`manage.py pgwarden rehearse` runs Python migrations through Django's executor, on the copy.

tests/contrib/django_multi: beta 0002 (SQL), 0003 (AddField, RunPython, AlterField to NOT
NULL) and 0004 (SQL) are pending. The rehearsal used to stop before 0003 and leave 0004
out; now 0003 is one step that Django's executor runs on the rehearsal copy (locks,
duration, rows written measured), and the real database is untouched. A RunPython that
fails there (it expects rows the copy does not have) is RH102, not a traceback; Ctrl-C
while one runs is one message, a partial report and exit 2.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.test_django_ctrl_c_twice import BUSY, _project
from tests.contrib.test_django_rehearse_ctrl_c import DJANGO_MIGRATIONS, sandbox, sandbox_env
from tests.contrib.test_django_upgrades import line_of, manage, released
from tests.rehearse.test_cli import _assert_clean

pytest.importorskip("django")

__all__ = ["sandbox"]  # the fixture, for pytest

NAME = "beta.0003_book_editor: RunPython editor_is_author"


def _real(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the rehearsal must not change on the real database."""
    return {
        "columns": conn.execute(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall(),
        "migrations": conn.execute(
            "SELECT app, name FROM django_migrations ORDER BY id"
        ).fetchall(),
        "books": conn.execute("SELECT count(*), sum(author_id) FROM beta_book").fetchall(),
        "authors": conn.execute("SELECT count(*) FROM alpha_author").fetchall(),
    }


def test_runpython_between_sql_migrations_is_rehearsed_on_the_copy(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    released(db, conn)
    before = _real(conn)
    report = tmp_path / "report.html"
    out = manage(
        db, "pgwarden", "rehearse", "beta", "--format", "json", "--report", str(report),
        cwd=tmp_path,  # the rehearsal record goes to .pgwarden/rehearsals there
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    # the real database: no editor_id, no shelf, no new django_migrations rows
    assert _real(conn) == before
    doc = json.loads(out.stdout)
    assert doc["status"] == "completed", out.stderr
    python = [m["name"] for m in doc["migrations"] if m["runs_python"]]
    assert python == ["0003_book_editor"]
    names = [f"{m['app']}.{m['name']}" for m in doc["migrations"]]
    beta = ["beta.0002_book_bar", "beta.0003_book_editor", "beta.0004_shelf"]
    assert [n for n in names if n.startswith("beta.")] == beta
    # every step ran: the SQL before and after the Python migration too
    assert {s["status"] for s in doc["steps"]} == {"ok"}, doc["steps"]
    (step,) = [s for s in doc["steps"] if s["sql"] == NAME]
    at = line_of("beta", "0003_book_editor", "migrations.RunPython(")
    assert step["location"].endswith(f"beta/migrations/0003_book_editor.py:{at}:9")
    # its AddField / AlterField took ACCESS EXCLUSIVE on beta_book inside its transaction
    assert step["strongest"].get("beta_book") == "ACCESS EXCLUSIVE", step
    assert step["duration_s"] > 0
    # the RunPython updated every book of the copy: the synthetic ones (not the real 200)
    # and those the write probes inserted
    (books,) = [t for t in doc["tables"] if t["name"] == "beta_book"]
    assert step["rows_written"] >= books["rows"] > 200
    # probe traffic on beta_book queued behind its ACCESS EXCLUSIVE
    (blocked,) = [b for b in step["blocking"] if b["table"] == "beta_book"]
    assert blocked["writes_blocked_s"] > 0 and blocked["writes"] > 0
    # after it, 0004 created its tables on the copy; 0003's NOT NULL held there
    assert any("beta_shelf" in s["sql"] for s in doc["steps"])
    assert NAME in report.read_text()
    assert "running beta.0003_book_editor: RunPython" in out.stderr
    # require_rehearsed: each stretch of SQL migrations `migrate` applies was rehearsed
    config = tmp_path / "pgwarden.toml"
    config.write_text("require_rehearsed = true\n")
    applied = manage(
        db, "pgwarden", "migrate", "beta", "--env", "test", "--yes", "--restamp",
        "--journal-file", str(tmp_path / "journal.jsonl"), "--config", str(config), cwd=tmp_path,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr


FAILS = """
from django.db import migrations

def needs_real_rows(apps, schema_editor):
    apps.get_model("slow", "Item").objects.get(name="the real one")

class Migration(migrations.Migration):
    dependencies = [("slow", "0001_initial")]
    operations = [migrations.RunPython(needs_real_rows, migrations.RunPython.noop)]
"""


def _env(db: str, root: Path, sandbox: Path, **extra: str) -> dict[str, str]:
    return sandbox_env(db, root, sandbox, COLUMNS="200", **extra)


def test_a_failing_runpython_is_rh102_naming_the_migration(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path, sandbox: Path
) -> None:
    _project(tmp_path, FAILS)
    conn.execute(DJANGO_MIGRATIONS)
    report = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "django", "pgwarden", "rehearse", "--report", str(report)],
        cwd=tmp_path, env=_env(db, tmp_path, sandbox), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("rehearsal failed: ")
    assert "in 2 migration(s) (1 run by Django's executor), up to slow.0002_busy" in out
    assert "slow.0002_busy: RunPython needs_real_rows: failed: slow.0002_busy failed" in out
    assert "slow/migrations/0002_busy.py:9:" in out and "error RH102 step_failed" in out
    assert "slow.0002_busy failed in Django's executor: DoesNotExist: Item matching query" in out
    assert "the atomic migration rolled back; the copy's rows are synthetic" in out
    assert "SQLSTATE None" not in out
    assert "RH102" in report.read_text()
    # the real database never saw the migrations: no table, no django_migrations row
    assert conn.execute("SELECT to_regclass('slow_item')").fetchone() == (None,)
    assert conn.execute("SELECT count(*) FROM django_migrations").fetchone() == (0,)
    _assert_clean(sandbox)


def test_ctrl_c_in_a_runpython_step_is_one_message_and_a_partial_report(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path, sandbox: Path
) -> None:
    _project(tmp_path, BUSY)  # 0002 inserts a row, says it started, then loops in Python
    conn.execute(DJANGO_MIGRATIONS)
    started, report = tmp_path / "started", tmp_path / "report.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "pgwarden", "rehearse", "--report", str(report)],
        cwd=tmp_path, env=_env(db, tmp_path, sandbox, SLOW_STARTED=str(started)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "error: interrupted; the rehearsal cluster was removed" in err
    assert f"partial report: {report}" in err
    html = report.read_text()
    assert "interrupted" in html and "slow.0002_busy: RunPython busy" in html
    assert conn.execute("SELECT to_regclass('slow_item')").fetchone() == (None,)
    _assert_clean(sandbox)


def test_the_copy_settings_keep_nothing_that_leads_to_the_real_database() -> None:
    """A service, passfile, pool or SSL file of the real database would connect elsewhere
    than the copy (a pool is even shared per alias): dropped; search_path options kept."""
    from pgwarden.contrib.django.rehearsal import scratch_settings

    real = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "prod", "HOST": "db.example", "PORT": "6432", "USER": "app", "PASSWORD": "s",
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            "service": "prod", "passfile": "/p", "pool": True, "sslmode": "verify-full",
            "sslrootcert": "/ca", "assume_role": "owner", "options": "-c search_path=app",
        },
    }  # fmt: skip
    copy = scratch_settings(real, "host=/tmp/x port=5432 dbname=rehearsal user=postgres")
    assert (copy["NAME"], copy["HOST"], copy["PORT"], copy["USER"], copy["PASSWORD"]) == (
        "rehearsal", "/tmp/x", "5432", "postgres", "",
    )  # fmt: skip
    assert copy["OPTIONS"] == {"options": "-c search_path=app"}
    assert copy["CONN_MAX_AGE"] == 60 and real["NAME"] == "prod"
