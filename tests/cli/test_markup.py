"""User text is shown literally: `[/]`, `[bold]`, `[idle in transaction]` never read as markup.

Every field the CLI prints that a user, a file or the server controls (SQL, file paths,
environment names, the stamp, blockers' query and state, run messages, backup paths) goes
through real CLI runs here; each must appear as typed and no run may end in an internal error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pgwarden.demo import create_sample_schema
from tests.apply.conftest import scalar

MARK = "[/] [bold] [idle in transaction]"
ENV = "st[/]ag [bold]"


@pytest.fixture
def shop(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=200, accounts_rows=10)
    return db


def pgwarden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400"}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


def assert_literal(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    text = p.stdout + p.stderr
    assert p.returncode == code, (p.returncode, text)
    assert "internal error" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def test_user_text_is_printed_literally_everywhere(shop: str, tmp_path: Path) -> None:
    folder = tmp_path / "m[/]x [bold]"
    folder.mkdir(parents=True)
    (tmp_path / "pgwarden.toml").write_text(f'[environments."{ENV}"]\nprotected = false\n')
    col = f'"c{MARK}"'
    first = folder / "001.sql"
    first.write_text(f"ALTER TABLE settings ADD COLUMN {col} text;\n")
    url = ["--database-url", shop, "--env", ENV, "--restamp"]  # adopt the fresh database

    # lint and explain: the path and the SQL
    assert_literal(pgwarden("lint", str(first), cwd=tmp_path), 0, str(first))
    assert_literal(
        pgwarden("explain", f"ALTER TABLE settings ADD COLUMN {col} text", cwd=tmp_path),
        0,
        MARK,
    )
    # dry run: the SQL, the env name
    assert_literal(pgwarden("apply", str(first), *url, "--dry-run", cwd=tmp_path), 0, MARK, ENV)

    # a blocker idle in a transaction, whose query names a column alias with markup in it
    holder = psycopg.connect(shop, application_name=f"app{MARK}")
    try:
        holder.execute(f'SELECT 1 AS "{MARK}" FROM settings LIMIT 1'.encode())
        blocked = pgwarden(
            "apply",
            str(first),
            *url,
            "--lock-timeout-ms",
            "100",
            "--lock-budget-s",
            "1",
            "--journal-file",
            str(folder / "j.jsonl"),
            cwd=tmp_path,
        )
    finally:
        holder.close()
    text = assert_literal(blocked, 3, f"app{MARK}", f'"{MARK}"', MARK, ENV)
    assert "[idle in transaction, transaction " in text

    # a statement that fails with a message carrying markup: step_failed and the run message
    second = folder / "002.sql"
    second.write_text(f"DO $$ BEGIN RAISE EXCEPTION 'boom {MARK}'; END $$;\n")
    failed = pgwarden("apply", str(first), str(second), *url, cwd=tmp_path)
    text = assert_literal(failed, 3, f"boom {MARK}", MARK)
    assert "step 1 step 1" not in text  # the step is named once
    assert scalar(shop, f"SELECT count(*) FROM pgwarden.runs WHERE message LIKE '%{MARK}%'") == 1

    # status: the stamped env name, steps' SQL, run messages
    status = pgwarden("status", "--database-url", shop, cwd=tmp_path)
    assert_literal(status, 0, f"stamped {ENV}", f"on {ENV}", col, f"boom {MARK}")

    # backups: the catalogue path
    cat = tmp_path / "b[/]k [bold]"
    assert_literal(pgwarden("backup", "list", "--catalogue", str(cat), cwd=tmp_path), 0, str(cat))
    created = pgwarden(
        "backup", "create", "--database-url", shop, "--catalogue", str(cat), cwd=tmp_path
    )
    assert_literal(created, 0, f"in {cat}")
    assert_literal(pgwarden("backup", "list", "--catalogue", str(cat), cwd=tmp_path), 0, "verified")
