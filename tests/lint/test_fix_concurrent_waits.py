"""A fixed file's CONCURRENTLY index build outlasts a transaction longer than its lock_timeout.

A concurrent build waits for every transaction older than it; under the file's short
session lock_timeout that wait timed out and left an INVALID index, so the fixed file
failed on any server running a transaction longer than 1 s.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database


def test_concurrent_build_waits_for_an_older_transaction(pg_cluster, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text("CREATE INDEX invoices_status_idx ON invoices (status);\n")
    plan, result = lint([f], context=Context(None, None, pg_cluster.installation.major, "x"))
    write_fixes(fix_plan(plan, result))
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)

    reading = threading.Event()

    def report() -> None:  # a 3 s report query, started before the build
        with psycopg.connect(dsn) as c:
            c.execute("SELECT count(*) FROM invoices")
            reading.set()
            c.execute("SELECT pg_sleep(3)")

    reader = threading.Thread(target=report)
    reader.start()
    try:
        assert reading.wait(30)
        with psycopg.connect(dsn, autocommit=True) as c:
            for stmt in parse(f.read_text()):
                c.execute(stmt.text)
    finally:
        reader.join()
    with psycopg.connect(dsn) as c:
        valid = c.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_status_idx'::regclass"
        ).fetchone()
    assert valid == (True,)
