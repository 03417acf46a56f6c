"""`manage.py pgwarden` on a real Django project against real throwaway clusters.

Django runs in subprocesses (tests/contrib/django_project, its database from
$PGWARDEN_DJANGO_DSN) so settings never leak between tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_project"
SRC = Path(__file__).parents[2] / "src"
ALL = [
    "0001_initial",
    "0002_invoice_account",
    "0003_invoice_number_idx",
    "0004_invoice_currency_reference",
    "0005_rename_amount_cents",
    "0006_invoice_account_number_idx",
]


def _env(dsn: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PGWARDEN_DJANGO_DSN"] = dsn
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["COLUMNS"] = "200"
    return env


def manage(
    dsn: str, *args: str, timeout: float = 120, cwd: Path = PROJECT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=cwd,
        env=_env(dsn),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def migrate(
    dsn: str, tmp: Path, *args: str, cwd: Path = PROJECT
) -> subprocess.CompletedProcess[str]:
    return manage(
        dsn,
        "pgwarden",
        "migrate",
        *args,
        "--env",
        "test",
        "--yes",
        "--journal-file",
        str(tmp / "journal.jsonl"),
        cwd=cwd,
    )


def line_of(migration: str, needle: str, nth: int = 0) -> int:
    """1-based line of the `nth` line of a sample migration containing `needle`."""
    lines = (PROJECT / "billing" / "migrations" / f"{migration}.py").read_text().splitlines()
    return [i for i, text in enumerate(lines, 1) if needle in text][nth]


def recorded(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM django_migrations WHERE app = 'billing' ORDER BY id"
    ).fetchall()
    return [str(r[0]) for r in rows]


def columns(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'billing_invoice'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _seed(conn: psycopg.Connection[Any], *, null_reference: bool = False) -> None:
    conn.execute(
        "INSERT INTO billing_paymentaccount (name) "
        "SELECT 'acct ' || g FROM generate_series(1, 200) g"
    )
    conn.execute(
        "INSERT INTO billing_invoice (number, reference, amount_cents) "
        "SELECT 'INV-' || g, 'ref', g FROM generate_series(1, 5000) g"
    )
    if null_reference:
        conn.execute(
            "INSERT INTO billing_invoice (number, reference, amount_cents) VALUES ('X', NULL, 1)"
        )


def _django_agrees(dsn: str, tmp: Path) -> None:
    """Django itself sees no unapplied migration."""
    check = manage(dsn, "migrate", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_lint_flags_fk_on_table_with_rows_with_django_remedy(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    first = migrate(db, tmp_path, "billing", "0001")
    assert first.returncode == 0, first.stdout + first.stderr
    _seed(conn)

    # from the SQL alone: every table is assumed large (by default lint reads the database)
    out = manage(db, "pgwarden", "lint", "--unapplied", "--sql-only", "--format", "json")
    assert out.returncode == 1, out.stdout + out.stderr  # errors found
    assert out.stdout.startswith("{"), out.stderr
    doc = json.loads(out.stdout)
    assert [m["name"] for m in doc["migrations"]] == ALL[1:]
    assert [m["atomic"] for m in doc["migrations"]] == [True, True, True, True, False]
    by_code: dict[str, list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        by_code.setdefault(f["code"], []).append(f)

    # The foreign key: both tables, both lock modes, located at the AddField, Django remedy.
    fk = [
        f
        for f in doc["findings"]
        if "billing_paymentaccount" in f["message"] and "billing_invoice" in f["message"]
    ]
    assert fk, doc["findings"]
    f = fk[0]
    assert f["location"]["path"] == "billing/migrations/0002_invoice_account.py"
    assert f["location"]["line"] == line_of(ALL[1], "migrations.AddField(")
    assert "ACCESS EXCLUSIVE" in f["message"] and "SHARE ROW EXCLUSIVE" in f["message"]
    assert "SeparateDatabaseAndState" in f["help"] and "NOT VALID" in f["help"]
    assert "atomic = False" in f["help"]

    # The index of 0003: AddIndexConcurrently in a non-atomic migration.
    idx = [
        f for f in by_code["PW101"] if f["location"]["path"].endswith("0003_invoice_number_idx.py")
    ]
    assert idx and idx[0]["location"]["line"] == line_of(ALL[2], "migrations.AddIndex(")
    assert "AddIndexConcurrently" in idx[0]["help"] and "atomic = False" in idx[0]["help"]

    # 0006 follows that advice: no PW101 there, and it runs outside a transaction.
    assert not [f for f in by_code["PW101"] if "0006" in f["location"]["path"]]
    assert not [f for f in doc["findings"] if f["code"] == "PW130"]

    # NOT NULL set later (0004's AlterField, its second operation) and the rename (0005).
    (nn,) = by_code["PW103"]
    assert nn["location"]["path"].endswith("0004_invoice_currency_reference.py")
    assert nn["location"]["line"] == line_of(ALL[3], "migrations.AlterField(")
    assert "nullable first" in nn["help"]
    (ren,) = by_code["PW203"]
    assert ren["location"]["path"].endswith("0005_rename_amount_cents.py")
    assert "SeparateDatabaseAndState" in ren["help"]

    # The text report shows the same, at the migration file.
    text = manage(db, "pgwarden", "lint", "--unapplied", "billing", "--sql-only")
    assert text.returncode == 1
    at = f"billing/migrations/0002_invoice_account.py:{line_of(ALL[1], 'AddField(')}:9"
    assert at in text.stdout
    assert "In Django:" in text.stdout
    # Linting read nothing into django_migrations.
    assert recorded(conn) == ALL[:1]


def test_lint_with_stats_of_tiny_tables(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    migrate(db, tmp_path, "billing", "0001")
    out = manage(db, "pgwarden", "lint", "--unapplied", "--live-stats", "--format", "json")
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)
    assert doc["summary"]["assumptions"] == []


def test_migrate_applies_and_records(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    first = migrate(db, tmp_path, "billing", "0001")
    assert first.returncode == 0, first.stdout + first.stderr
    assert recorded(conn) == ALL[:1]
    _seed(conn)

    # The identity guard: this database is stamped "test", not "production".
    wrong = manage(db, "pgwarden", "migrate", "--env", "production", "--yes",
                   "--journal-file", str(tmp_path / "journal.jsonl"))  # fmt: skip
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "stamped" in wrong.stderr
    assert recorded(conn) == ALL[:1]

    rest = migrate(db, tmp_path)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert "lock_timeout" in rest.stderr  # every statement ran under the guard
    assert recorded(conn) == ALL
    assert {"account_id", "currency", "total_cents"} <= columns(conn)
    (valid,) = conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoice_account_number_idx'::regclass"
    )
    assert valid[0] is True  # built CONCURRENTLY, recorded after it (atomic = False)
    assert "amount_cents" not in columns(conn)
    _django_agrees(db, tmp_path)
    # The run is in pgwarden's journal.
    (state,) = conn.execute("SELECT state FROM pgwarden.runs ORDER BY started_at DESC LIMIT 1")
    assert state[0] == "done"

    again = migrate(db, tmp_path)
    assert again.returncode == 0 and "no migrations to apply" in again.stdout


def test_failing_migration_leaves_history_consistent(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    first = migrate(db, tmp_path, "billing", "0001")
    assert first.returncode == 0, first.stdout + first.stderr
    _seed(conn, null_reference=True)  # 0004's SET NOT NULL will fail

    failed = migrate(db, tmp_path)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    # 0002 and 0003 committed with their rows; 0004 rolled back with its row.
    assert recorded(conn) == ALL[:3]
    cols = columns(conn)
    assert "account_id" in cols and "currency" not in cols and "amount_cents" in cols

    conn.execute("UPDATE billing_invoice SET reference = 'fixed' WHERE reference IS NULL")
    done = migrate(db, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert recorded(conn) == ALL
    _django_agrees(db, tmp_path)


def test_cancel_while_waiting_for_a_lock_leaves_history_consistent(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    first = migrate(db, tmp_path, "billing", "0001")
    assert first.returncode == 0, first.stdout + first.stderr
    _seed(conn)
    with psycopg.connect(db) as blocker:  # an open transaction holding a lock 0002 needs
        blocker.execute("SELECT count(*) FROM billing_invoice")
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT / "manage.py"), "pgwarden", "migrate", "--env", "test",
             "--yes", "--lock-timeout-ms", "100", "--journal-file",
             str(tmp_path / "journal.jsonl")],
            cwd=PROJECT,
            env=_env(db),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            seen = False
            while time.monotonic() < deadline and not seen:
                row = conn.execute(
                    "SELECT count(*) FROM pgwarden.events WHERE kind = 'retry'"
                    if conn.execute("SELECT to_regclass('pgwarden.events')").fetchone() != (None,)
                    else "SELECT 0"
                ).fetchone()
                seen = bool(row and int(str(row[0])) > 0)
                time.sleep(0.1)
            assert seen, "the migration never retried behind the blocker"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        blocker.rollback()
    assert proc.returncode == 3, out + err
    assert recorded(conn) == ALL[:1]
    assert "account_id" not in columns(conn)

    done = migrate(db, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert recorded(conn) == ALL


def test_rehearse_locates_blocking_at_the_migration(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    first = migrate(db, tmp_path, "billing", "0001")
    assert first.returncode == 0, first.stdout + first.stderr
    _seed(conn)
    report = tmp_path / "rehearsal.html"
    out = manage(db, "pgwarden", "rehearse", "billing", "--report", str(report), cwd=tmp_path)
    assert out.returncode in (0, 1), out.stdout + out.stderr
    assert out.stdout.startswith("rehearsal completed"), out.stdout + out.stderr
    assert report.exists()
    # Findings point at the migration files, not at the temporary .sql files.
    assert "0003_invoice_number_idx.py" in out.stdout
    assert "pgwarden-django-" not in out.stdout
    # A rehearsal changes nothing in the real database.
    assert recorded(conn) == ALL[:1]
    assert "account_id" not in columns(conn)


def test_require_rehearsed_accepts_what_manage_py_pgwarden_rehearse_rehearsed(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text("require_rehearsed = true\n")
    first = migrate(db, tmp_path, "billing", "0001", "--config", str(config), cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "never rehearsed" in first.stderr
    assert recorded(conn) == []
    rehearsed = manage(db, "pgwarden", "rehearse", "billing", "0001", cwd=tmp_path)
    assert rehearsed.stdout.startswith("rehearsal completed"), rehearsed.stdout + rehearsed.stderr
    # Rehearsed as files with BEGIN/COMMIT, applied as the runner's transaction: same plan.
    applied = migrate(db, tmp_path, "billing", "0001", "--config", str(config), cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert recorded(conn) == ALL[:1]


def test_ignore_comments_in_migration_files(tmp_path: Path) -> None:
    from pgwarden.contrib.django.source import MigrationSQL, OperationSQL, suppress
    from pgwarden.findings import Finding, Severity
    from pgwarden.lint.engine import LintResult
    from pgwarden.location import SourceLocation

    path = tmp_path / "0007_x.py"
    path.write_text(
        "class Migration:\n"
        "    operations = [\n"
        "        # pgwarden: ignore PW101 settings has 40 rows\n"
        "        AddIndex(a),\n"
        "        AddIndex(b),  # pgwarden: ignore PW101\n"
        "        AddIndex(c),\n"
        "    ]\n"
    )
    mig = MigrationSQL(
        "app",
        "0007_x",
        str(path),
        1,
        True,
        tuple(OperationSQL(i, "x", 4 + i, 9) for i in range(3)),
        (),
        (("app", "0007_x"),),
    )

    def finding(line: int, step: int) -> Finding:
        loc = SourceLocation(str(path), line, 9)
        return Finding("PW101", "index-built-without-concurrently", Severity.ERROR, "m", "h", loc,
                       step=step)  # fmt: skip

    result = suppress(LintResult((finding(4, 0), finding(5, 1), finding(6, 2))), [mig])
    assert [(f.code, f.location.line) for f in result.findings] == [
        ("PW900", 5),  # no reason: suppresses nothing, and says so
        ("PW101", 5),
        ("PW101", 6),
    ]
    ((f, sup),) = result.suppressed
    assert f.location.line == 4 and sup.reason == "settings has 40 rows"


def test_import_without_django() -> None:
    code = (
        "import sys; sys.modules['django'] = None\n"
        "import pgwarden, pgwarden.contrib, pgwarden.cli\n"
        "import pgwarden.contrib.django\n"
        "try:\n"
        "    import pgwarden.contrib.django.apps\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=_env("dbname=x"), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
