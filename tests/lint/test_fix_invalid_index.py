"""`lint --fix` index builds on a re-run: an INVALID leftover is rebuilt, a valid index kept.

A concurrent build that fails half-way (duplicates, a lock timeout, a cancel)
leaves an INVALID index of its name. The fixed file run again drops that one
and builds it anew; an index the build finished is left as it is, not dropped
and rebuilt on every run.
"""

from __future__ import annotations

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

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
UNIQUE = "ALTER TABLE invoices ADD CONSTRAINT invoices_reference_key UNIQUE (reference);\n"
INDEX = "CREATE INDEX invoices_created_at_idx ON invoices (created_at);\n"


def _fixed(tmp_path: Path, text: str, major: int) -> list[str]:
    """The statements of `text` rewritten by lint --fix for `major`."""
    snap = load_snapshot(CASES / "demo-stats.json")
    f = tmp_path / "001.sql"
    f.write_text(text)
    plan, result = lint([f], context=Context(snap, snap.catalog, major, "snapshot"))
    fixes = fix_plan(plan, result, snap)
    assert fixes, text
    write_fixes(fixes)
    return [s.text for s in parse(f.read_text())]


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        c.execute("ALTER TABLE invoices ADD COLUMN reference text")
    return dsn


def _run(c: psycopg.Connection[tuple[object, ...]], stmts: list[str]) -> None:
    """The file as psql -v ON_ERROR_STOP=1 -f runs it."""
    for q in stmts:
        c.execute(q.encode())


def _index(c: psycopg.Connection[tuple[object, ...]], name: str) -> tuple[object, ...] | None:
    return c.execute(
        "SELECT indexrelid::bigint, indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (name,),
    ).fetchone()


def _valid(c: psycopg.Connection[tuple[object, ...]], name: str) -> object:
    """Whether the index is VALID; None when there is none of that name."""
    row = _index(c, name)
    return row[1] if row is not None else None


def test_unique_fix_rerun_after_a_failed_build(pg_any: Cluster, tmp_path: Path) -> None:
    """Duplicates fail the unique build, leaving it INVALID; once they are fixed, the
    file run again builds a VALID index and attaches the constraint to it (before:
    IF NOT EXISTS kept the invalid index and USING INDEX failed, 'is not valid')."""
    stmts = _fixed(tmp_path, UNIQUE, pg_any.installation.major)
    with psycopg.connect(_database(pg_any), autocommit=True) as c:
        c.execute("UPDATE invoices SET reference = 'dup' WHERE id IN (1, 2)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            _run(c, stmts)
        assert _valid(c, "invoices_reference_key") is False
        c.execute("UPDATE invoices SET reference = NULL WHERE id = 2")
        _run(c, stmts)
        built = _index(c, "invoices_reference_key")
        assert built is not None and built[1:] == (True,)
        con = c.execute(
            "SELECT contype::text, conindid::bigint, convalidated FROM pg_constraint "
            "WHERE conname = 'invoices_reference_key'"
        ).fetchone()
        assert con == ("u", built[0], True)
        _run(c, stmts)  # and again: nothing left to do
        assert _index(c, "invoices_reference_key") == built
        assert c.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() == (0,)


def test_index_fix_rerun_keeps_a_valid_index(pg_any: Cluster, tmp_path: Path) -> None:
    """A re-run of a file whose build finished keeps that index (before: it was dropped
    and built again on every run)."""
    stmts = _fixed(tmp_path, INDEX, pg_any.installation.major)
    with psycopg.connect(_database(pg_any), autocommit=True) as c:
        _run(c, stmts)
        built = _index(c, "invoices_created_at_idx")
        assert built is not None and built[1:] == (True,)
        _run(c, stmts)
        assert _index(c, "invoices_created_at_idx") == built  # the same index, not rebuilt


def test_index_being_built_elsewhere_is_left_alone(pg_cluster: Cluster, tmp_path: Path) -> None:
    """An index another session is building is INVALID until it finishes: the cleanup
    does not set it aside (the build goes on and finishes under its own name)."""
    stmts = _fixed(tmp_path, INDEX, pg_cluster.installation.major)
    dsn = _database(pg_cluster)
    cleanup = next(s for s in stmts if s.startswith("DO $pgwarden$"))
    with (
        psycopg.connect(dsn, autocommit=True) as writer,
        psycopg.connect(dsn, autocommit=True) as builder,
        psycopg.connect(dsn, autocommit=True) as c,
    ):
        writer.execute("BEGIN")
        writer.execute("UPDATE invoices SET status = status WHERE id = 1")
        # The build waits for the writer after creating its (INVALID) index.
        builder.pgconn.send_query(
            b"CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at)"
        )
        for _ in range(200):
            if c.execute(
                "SELECT FROM pg_stat_progress_create_index WHERE index_relid <> 0"
            ).fetchone():
                break
            c.execute("SELECT pg_sleep(0.05)")
        c.execute(cleanup.encode())
        assert c.execute("SELECT to_regclass('invoices_created_at_idx')").fetchone() != (None,)
        writer.execute("ROLLBACK")
        while builder.pgconn.get_result() is not None:
            pass
        assert _valid(c, "invoices_created_at_idx") is True


def test_unnamed_index_fix_rerun_builds_no_second_copy(pg_any: Cluster, tmp_path: Path) -> None:
    """An unnamed build is named as the server would name it (the catalog shows the name
    free), so a re-run finds it (before: every run built another copy, ..._idx1, ...)."""
    stmts = _fixed(tmp_path, "CREATE INDEX ON invoices (created_at);\n", pg_any.installation.major)
    with psycopg.connect(_database(pg_any), autocommit=True) as c:
        for _ in range(2):
            _run(c, stmts)
        names = c.execute(
            "SELECT array_agg(indexrelid::regclass::text) FROM pg_index "
            "WHERE indrelid = 'invoices'::regclass "
            "AND pg_get_indexdef(indexrelid) LIKE '%%created_at%%'"
        ).fetchone()
    assert names == (["invoices_created_at_idx"],)
