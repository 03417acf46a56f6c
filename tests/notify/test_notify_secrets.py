"""The webhook URL is a secret: no output, log line, journal, file or database row of a
run shows it, whether it is valid, rejected, written in the file or unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from tests.notify.receiver import receiver

TOKEN = "T0KEN-zz-9f8e7d6c"
ENVS = "[environments.staging]\nprotected = false\n\n"


def _apply(folder: Path, dsn: str, hook: str | None, *extra: str) -> str:
    """stdout + stderr of `pgwarden apply` (JSON log lines) in `folder`, and its exit code."""
    env = {**os.environ, "COLUMNS": "500"}
    if hook is not None:
        env["HOOK_URL"] = hook
    (folder / "001.sql").write_text("CREATE TABLE IF NOT EXISTS s (id int PRIMARY KEY);\n")
    argv = [sys.executable, "-m", "pgwarden", "apply", "001.sql", "--database-url", dsn]
    argv += ["--env", "staging", "--restamp", "--log-format", "json", *extra]
    run = subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"


def _files(folder: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file() and p.stat().st_size
    )


def _rows(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as c:
        tables = [
            str(r[0])
            for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'pgwarden'")
        ]
        q = sql.SQL("SELECT row_to_json(x)::text FROM pgwarden.{} x")
        return "\n".join(str(r) for t in tables for r in c.execute(q.format(sql.Identifier(t))))


def test_the_url_never_leaks(db: str, tmp_path: Path) -> None:
    rejected = tmp_path / "rejected"
    rejected.mkdir()
    (rejected / "pgwarden.toml").write_text(ENVS + '[[notify.webhooks]]\nurl_env = "HOOK_URL"\n')
    bad = _apply(rejected, db, f"ftp://user:{TOKEN}@example.com/hook")
    assert bad.startswith("exit 2\n"), bad
    assert "webhook #1 (HOOK_URL): the URL is not an http:// or https:// URL" in bad
    assert TOKEN not in bad + _files(rejected)

    with receiver("fail:100:500") as rx:
        literal = tmp_path / "literal"
        literal.mkdir()
        url = rx.url.replace(rx.token, TOKEN)
        (literal / "pgwarden.toml").write_text(
            ENVS + f'[notify]\nexit_wait_s = 1\n\n[[notify.webhooks]]\nurl = "{url}"\n'
        )
        failing = _apply(literal, db, None)
        assert rx.requests  # it was tried, and refused with HTTP 500
        assert all(h["path"] == f"/hooks/{TOKEN}" for h in rx.headers)
    assert failing.startswith("exit 0\n"), failing
    assert "webhook #1 (url in the configuration): the webhook URL is written" in failing
    assert "not delivered to webhook #1 (url in the configuration): HTTP 500" in failing
    assert '"event": "run_started"' in failing or '"event":"run_started"' in failing
    assert (literal / ".pgwarden" / "journal.jsonl").stat().st_size > 0
    for text in (failing, _files(literal / ".pgwarden"), _rows(db)):
        assert TOKEN not in text and url not in text
