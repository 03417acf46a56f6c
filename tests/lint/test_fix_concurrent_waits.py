"""A fixed file's CONCURRENTLY index build outlasts a transaction longer than its lock_timeout.

A concurrent build waits for every transaction older than it; under the file's short
session lock_timeout that wait timed out and left an INVALID index, so the fixed file
failed on any server running a transaction longer than 1 s.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
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


# REINDEX ... CONCURRENTLY and DETACH PARTITION ... CONCURRENTLY wait for older
# transactions as a concurrent build does. Measured on PG15 behind a 4 s transaction, with
# probes under a 300 ms lock_timeout during the wait: a REINDEX waits on virtualxid locks
# only (its ACCESS EXCLUSIVE on the old copy comes after every user of it is gone, and no
# new query sees it: indislive is off) and blocks no read or write; a DETACH blocks none
# through the parent (the pending partition is left out of new queries), only queries
# naming the partition itself while a transaction has the partition open directly (its
# ACCESS EXCLUSIVE on the partition), and so does the FINALIZE of a pending detach, which
# takes that lock before it waits for older snapshots.

BOUNDED = "ALTER TABLE invoices ADD COLUMN note text;\n"  # gives the file its 1 s bound


def _fixed_file(tmp_path: Path, text: str, major: int) -> Path:
    f = tmp_path / "001.sql"
    f.write_text(text + BOUNDED)
    plan, result = lint([f], context=Context(None, None, major, "x"))
    write_fixes(fix_plan(plan, result))
    assert "\nSET lock_timeout = '1000ms';\n" in f.read_text(), f.read_text()
    return f


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        c.execute(
            "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);"
            "CREATE TABLE events_2023 PARTITION OF events"
            " FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');"
            "CREATE TABLE events_2024 PARTITION OF events"
            " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
        )
    return dsn


@contextmanager
def _report_running(dsn: str, query: str) -> Iterator[None]:
    """A 3 s report transaction, started before what runs inside."""
    reading = threading.Event()

    def report() -> None:
        with psycopg.connect(dsn) as c:
            c.execute(query)
            reading.set()
            c.execute("SELECT pg_sleep(3)")

    reader = threading.Thread(target=report)
    reader.start()
    try:
        assert reading.wait(30)
        yield
    finally:
        reader.join()


def _run(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for stmt in parse(path.read_text()):
            c.execute(stmt.text.encode())


def _invalid(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
        ).fetchall()


def _cancelled(dsn: str, statement: str) -> None:
    """`statement` cancelled half-way, as by a timeout behind a writer on invoices."""
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT * FROM events LIMIT 1")
        other.execute("UPDATE invoices SET status = status WHERE id = 1")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("SET statement_timeout = '300ms'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute(statement.encode())
        other.execute("ROLLBACK")


def test_reindex_concurrently_waits_for_an_older_transaction(
    pg_any: Cluster, tmp_path: Path
) -> None:
    """Before, it failed with LockNotAvailable after 1 s, leaving an INVALID _ccnew copy."""
    f = _fixed_file(
        tmp_path, "REINDEX INDEX invoices_payment_account_id_idx;\n", pg_any.installation.major
    )
    dsn = _database(pg_any)
    with _report_running(dsn, "SELECT count(*) FROM invoices"):
        _run(dsn, f)
    assert _invalid(dsn) == []


@pytest.mark.parametrize(
    "reindex", ["REINDEX SCHEMA app", "REINDEX (CONCURRENTLY false) INDEX invoices_status_idx"]
)
def test_a_plain_reindex_kept_as_written_keeps_the_short_timeout(
    tmp_path: Path, reindex: str
) -> None:
    """A REINDEX that is not concurrent (PW111 ignored) takes SHARE or ACCESS EXCLUSIVE
    locks that queries queue behind: it keeps the file's bound. Before, one that cannot run
    in a transaction (a schema's) was given the concurrent rebuild's 10 min."""
    f = _fixed_file(tmp_path, f"-- pgwarden: ignore PW111 reviewed\n{reindex};\n", 15)
    bound = None
    for stmt in parse(f.read_text()):
        if stmt.text.startswith("SET lock_timeout"):
            bound = stmt.text
        elif stmt.text.startswith("REINDEX"):
            assert bound == "SET lock_timeout = '1000ms'", f.read_text()
            break
    else:
        raise AssertionError(f.read_text())


def test_a_plain_reindex_schema_gets_no_header_about_concurrent_copies(tmp_path: Path) -> None:
    """Only a cancelled REINDEX ... CONCURRENTLY leaves _ccnew copies; before, the header
    said a plain REINDEX SCHEMA (PW111 ignored) left copies to retry with apply for."""
    f = _fixed_file(tmp_path, "-- pgwarden: ignore PW111 reviewed\nREINDEX SCHEMA app;\n", 15)
    assert "cannot name the INVALID copies" not in f.read_text(), f.read_text()
    assert "pgwarden apply" not in f.read_text(), f.read_text()
