"""Other sessions' queries are stored and printed as fingerprints, unless asked for whole."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.redact import fingerprint_query
from tests.apply.conftest import cli, scalar, write_sql

SECRET = "tok_8f3a9c1e77"
WAITING = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'queued' "
    "AND wait_event_type = 'Lock'"
)


@pytest.mark.parametrize(
    ("query", "shape"),
    [
        (f"SELECT * FROM users WHERE token = '{SECRET}' AND n = 42", "token = $1 AND n = $2"),
        (f"UPDATE t SET v = $${SECRET}$$ /* {SECRET} */", "SET v = $1"),
        (f"SELEC broken '{SECRET}' -- {SECRET}", "SELEC broken ?"),
        (f"SELECT 1 FROM t WHERE a = E'x\\'{SECRET}", "WHERE a = ?"),  # cut by the server
        (f"SELECT '{SECRET}' AS \"[a--b]\" FROM t WHERE x = 1.5e3", '"[a--b]"'),
    ],
)
def test_a_fingerprint_keeps_the_shape_and_drops_every_literal(query: str, shape: str) -> None:
    fp = fingerprint_query(query)
    assert SECRET not in fp and shape in fp


def test_a_fingerprint_is_short() -> None:
    fp = fingerprint_query("SELECT " + ", ".join(f"col_{i}" for i in range(200)) + " FROM t")
    assert len(fp) == 200 and fp.endswith("…")


def _apply(
    shop: str, tmp_path: Path, journal: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    path = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    return subprocess.run(
        cli(
            "apply",
            str(path),
            "--database-url",
            shop,
            "--env",
            "staging",
            "--lock-timeout-ms",
            "1500",
            "--lock-budget-s",
            "2",
            "--journal-file",
            str(journal),
            *extra,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )


def test_blockers_and_blocked_sessions_are_stored_and_printed_as_fingerprints(
    shop: str, holder, tmp_path: Path
) -> None:
    """A blocker idle in a transaction and readers queued behind our ALTER: the lock_wait,
    retry and watchdog_cancel events carry their queries without the literal."""
    holder(f"BEGIN; SELECT count(*) FROM settings WHERE value <> '{SECRET}'")
    stop = threading.Event()

    def queued() -> None:
        with psycopg.connect(shop, autocommit=True, application_name="queued") as c:
            while not stop.is_set():
                with contextlib.suppress(psycopg.Error):
                    c.execute(f"SELECT * FROM settings WHERE key = '{SECRET}'".encode())
                stop.wait(0.01)

    readers = [threading.Thread(target=queued, daemon=True) for _ in range(4)]
    for t in readers:
        t.start()
    journal = tmp_path / "private" / "journal.jsonl"
    try:
        p = _apply(shop, tmp_path, journal)
    finally:
        stop.set()
        for t in readers:
            t.join(30)
    assert p.returncode == 3, p.stderr
    kinds = scalar(shop, "SELECT array_agg(DISTINCT kind) FROM pgwarden.events")
    assert isinstance(kinds, list) and {"lock_wait", "watchdog_cancel"} <= set(kinds), kinds
    stored = str(scalar(shop, "SELECT string_agg(data::text, ' ') FROM pgwarden.events"))
    local = journal.read_text()
    for text in (p.stderr, p.stdout, stored, local):
        assert SECRET not in text
    assert "WHERE value <> $1" in p.stderr and "WHERE value <> $1" in stored
    assert "WHERE key = $1" in stored and "WHERE key = $1" in local
    assert os.stat(journal).st_mode & 0o777 == 0o600
    assert os.stat(journal.parent).st_mode & 0o777 == 0o700


def test_log_blocker_queries_keeps_them_whole(shop: str, holder, tmp_path: Path) -> None:
    holder(f"BEGIN; SELECT count(*) FROM settings WHERE value <> '{SECRET}'")
    p = _apply(shop, tmp_path, tmp_path / "j.jsonl", "--log-blocker-queries")
    assert p.returncode == 3, p.stderr
    assert SECRET in p.stderr
    assert SECRET in str(scalar(shop, "SELECT string_agg(data::text, ' ') FROM pgwarden.events"))
