"""`lint --fix` output after a run that was cancelled half-way, on a live server.

A cancelled `REINDEX ... CONCURRENTLY` leaves an INVALID `<index>_ccnew` copy
(REINDEX TABLE: of its TOAST index too, `pg_toast.pg_toast_<oid>_index_ccnew`);
the fixed file drops them before rebuilding, so running it again (and again)
leaves no invalid index, pg_toast included. A cancelled `DETACH PARTITION ... CONCURRENTLY` leaves
the partition "detach pending"; the fixed file finishes it with FINALIZE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database
from tests.lint.fixed_apply import apply_fixed

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"


def _fixed(tmp_path: Path, text: str, major: int, with_catalog: bool) -> list[str]:
    """`text` rewritten by lint --fix for `major`; its statements."""
    snap = load_snapshot(CASES / "demo-stats.json") if with_catalog else None
    ctx = Context(snap, snap.catalog if snap else None, major, "snapshot")
    f = tmp_path / "001.sql"
    f.write_text(text)
    plan, result = lint([f], context=ctx)
    fixes = fix_plan(plan, result, snap)
    assert fixes, text
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    assert not {x.code for x in after.findings} & {x.code for x in fixes[0].fixed}, f.read_text()
    return [s.text for s in parse(f.read_text())]


@contextmanager
def _writer_in_flight(dsn: str) -> Iterator[None]:
    """A transaction that has written to invoices and stays open: a concurrent rebuild
    waits for it after creating its copy, a concurrent detach after its first step."""
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute("SELECT * FROM events LIMIT 1")
        other.execute("UPDATE invoices SET status = status WHERE id = 1")
        yield
        other.execute("ROLLBACK")


def _cancelled(dsn: str, statement: str) -> None:
    with _writer_in_flight(dsn), psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET statement_timeout = '300ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute(statement.encode())


def _invalid(dsn: str) -> list[tuple[object, ...]]:
    """INVALID indexes, pg_toast included."""
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
        ).fetchall()


def _run(dsn: str, stmts: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts:
            c.execute(q.encode())


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        c.execute(
            "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);"
            "CREATE TABLE events_2023 PARTITION OF events"
            " FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
        )
    return dsn


@pytest.mark.parametrize(
    ("original", "with_catalog"),
    [
        ("REINDEX INDEX invoices_payment_account_id_idx;", False),
        ("REINDEX TABLE invoices;", True),
        ("REINDEX TABLE invoices;", False),
    ],
    ids=["index", "table-with-catalog", "table-without-catalog"],
)
def test_reindex_fix_drops_what_a_cancelled_rebuild_left(
    pg_any: Cluster, tmp_path: Path, original: str, with_catalog: bool
) -> None:
    stmts = _fixed(tmp_path, original, pg_any.installation.major, with_catalog)
    dsn = _database(pg_any)
    concurrent = next(s for s in stmts if s.lstrip().upper().startswith("REINDEX"))
    count = "SELECT count(*) FROM pg_index WHERE indrelid = 'invoices'::regclass"
    with psycopg.connect(dsn) as c:
        before = c.execute(count).fetchone()
    _cancelled(dsn, concurrent)  # as a retry of the fixed file that timed out there
    left = [str(r[0]) for r in _invalid(dsn)]
    assert "invoices_payment_account_id_idx_ccnew" in left
    assert all(n.endswith("_ccnew") for n in left)
    toast = [n for n in left if n.startswith("pg_toast.")]
    assert len(toast) == (1 if original.startswith("REINDEX TABLE") else 0), left
    # Without a catalog the file cannot name the table's copies: its header says to
    # retry with `pgwarden apply`, which drops them.
    unnamed = original.startswith("REINDEX TABLE") and not with_catalog
    assert ("retry with `pgwarden apply`" in (tmp_path / "001.sql").read_text()) is unnamed
    if unnamed:
        apply_fixed(dsn, tmp_path / "001.sql")
    else:
        _run(dsn, stmts)
    assert _invalid(dsn) == []
    _run(dsn, stmts)
    assert _invalid(dsn) == []
    with psycopg.connect(dsn) as c:
        assert c.execute(count).fetchone() == before  # no copy left


def test_detach_fix_finishes_a_pending_detach(pg_any: Cluster, tmp_path: Path) -> None:
    original = "ALTER TABLE events DETACH PARTITION events_2023;"
    stmts = _fixed(tmp_path, original, pg_any.installation.major, False)
    dsn = _database(pg_any)
    detach = stmts[-1]
    assert detach.rstrip(";").upper().endswith("CONCURRENTLY")
    _cancelled(dsn, detach)
    with psycopg.connect(dsn) as c:
        pending = c.execute("SELECT inhdetachpending FROM pg_inherits").fetchall()
    assert pending == [(True,)]
    _run(dsn, stmts[:-1])  # the retry: the pending detach is finished before the detach
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT count(*) FROM pg_inherits").fetchone() == (0,)
        assert c.execute("SELECT to_regclass('events_2023') IS NOT NULL").fetchone() == (True,)
    # Done: running the detach again changes nothing and says why (it cannot be skipped
    # in SQL: DETACH ... CONCURRENTLY cannot run inside a block).
    with pytest.raises(psycopg.errors.Error, match="is not a partition"):
        _run(dsn, stmts[-1:])
    # Not interrupted: the guard is a no-op and the detach runs.
    fresh = _database(pg_any)
    _run(fresh, stmts)
    with psycopg.connect(fresh) as c:
        assert c.execute("SELECT count(*) FROM pg_inherits").fetchone() == (0,)


def test_toast_leftover_without_pg_toast_usage_warns(pg_any: Cluster, tmp_path: Path) -> None:
    """A table owner that is not a superuser cannot name a pg_toast index: the fixed file
    warns with the DROP a superuser runs, and the rebuild goes on (skipping that copy)."""
    stmts = _fixed(tmp_path, "REINDEX TABLE invoices;", pg_any.installation.major, True)
    dsn = _database(pg_any)
    role = f"owner_{psycopg.conninfo.conninfo_to_dict(dsn)['dbname']}"  # one per database
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f'CREATE ROLE "{role}" LOGIN')
        c.execute(f'ALTER TABLE invoices OWNER TO "{role}"')
    concurrent = next(s for s in stmts if s.lstrip().upper().startswith("REINDEX"))
    _cancelled(dsn, concurrent)
    owner = psycopg.conninfo.make_conninfo(dsn, user=role)
    warnings: list[str] = []
    with psycopg.connect(owner, autocommit=True) as c:
        c.add_notice_handler(lambda d: warnings.append(str(d.message_primary)))
        for q in stmts:
            c.execute(q.encode())
    toast = [str(r[0]) for r in _invalid(dsn)]
    assert len(toast) == 1 and toast[0].startswith("pg_toast."), toast  # only the TOAST copy
    assert any(toast[0] in w and "cancelled REINDEX" in w for w in warnings), warnings
    _run(dsn, stmts)  # a superuser's retry drops it
    assert _invalid(dsn) == []


# The fixed file's detach keeps its 1 s lock_timeout. Its first transaction waits for
# SHARE UPDATE EXCLUSIVE on the table and the partition (behind a SHARE lock here); its
# second, once the partition is "detach pending", for the transactions that have the
# table open (a reader here).
DETACH_THEN_MORE = (
    "ALTER TABLE events DETACH PARTITION events_2023;\nALTER TABLE invoices ADD COLUMN note text;\n"
)
DETACH_HEADER = "-- A DETACH PARTITION ... CONCURRENTLY that completed cannot run again"


@contextmanager
def _holding(dsn: str, sql: str) -> Iterator[None]:
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute(sql.encode())
        yield
        other.execute("ROLLBACK")


def _until_failure(dsn: str, stmts: list[str]) -> tuple[int, str] | None:
    """Run `stmts` as psql with ON_ERROR_STOP does: the index of the one that failed, and
    its error."""
    with psycopg.connect(dsn, autocommit=True) as c:
        for i, q in enumerate(stmts):
            try:
                c.execute(q.encode())
            except psycopg.errors.Error as exc:
                return i, str(exc)
    return None


def _events_state(dsn: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as c:
        row = c.execute(
            "SELECT (SELECT count(*) FROM pg_inherits), to_regclass('events_2023') IS NOT NULL, "
            "EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'invoices'::regclass "
            "AND attname = 'note')"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_detach_that_timed_out_in_its_first_transaction_runs_on_the_retry(
    pg_any: Cluster, tmp_path: Path
) -> None:
    stmts = _fixed(tmp_path, DETACH_THEN_MORE, pg_any.installation.major, False)
    dsn = _database(pg_any)
    detach = next(i for i, q in enumerate(stmts) if q.rstrip(";").endswith("CONCURRENTLY"))
    with _holding(dsn, "LOCK TABLE events_2023 IN SHARE MODE"):
        failed = _until_failure(dsn, stmts)  # before any change
    assert failed == (detach, "canceling statement due to lock timeout")
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT inhdetachpending FROM pg_inherits").fetchall() == [(False,)]
    assert _until_failure(dsn, stmts) is None  # the retry the header asks for
    assert _events_state(dsn) == (0, True, True)


@pytest.mark.parametrize("retry", ["psql", "apply"])
def test_a_detach_that_timed_out_in_its_second_transaction_is_finished_on_the_retry(
    pg_any: Cluster, tmp_path: Path, retry: str
) -> None:
    """Left "detach pending": the retry finishes it with FINALIZE before the detach. With
    psql the detach itself then fails ("is not a partition"), as the header says, and the
    file from the statement after it runs; `pgwarden apply` records it as done."""
    stmts = _fixed(tmp_path, DETACH_THEN_MORE, pg_any.installation.major, False)
    assert DETACH_HEADER in (tmp_path / "001.sql").read_text()
    dsn = _database(pg_any)
    detach = next(i for i, q in enumerate(stmts) if q.rstrip(";").endswith("CONCURRENTLY"))
    with _holding(dsn, "SELECT * FROM events LIMIT 1"):
        failed = _until_failure(dsn, stmts)  # in its wait
    assert failed == (detach, "canceling statement due to lock timeout")
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT inhdetachpending FROM pg_inherits").fetchall() == [(True,)]
    if retry == "apply":
        apply_fixed(dsn, tmp_path / "001.sql")
    else:
        # done by the FINALIZE before it
        failed = _until_failure(dsn, stmts)
        assert failed is not None and failed[0] == detach and "is not a partition" in failed[1]
        assert _events_state(dsn) == (0, True, False)
        assert _until_failure(dsn, stmts[detach + 1 :]) is None
    assert _events_state(dsn) == (0, True, True)
