"""PW142: rows an UPDATE/DELETE ... WHERE touches, from the planner or the snapshot's column
statistics, checked against the real row counts on a live server."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import load_snapshot, save_snapshot, take_snapshot
from pgwarden.commands import Context, lint, load_context
from pgwarden.findings import Finding, Severity
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Settings
from tests.fixtures.pg import new_database

SCHEMA = """
CREATE TABLE invoices (id bigint PRIMARY KEY, status text, currency text, amount int,
                       created_at timestamptz, note text, email text, kind text);
INSERT INTO invoices
SELECT g, CASE WHEN g % 100 = 0 THEN NULL WHEN g % 10 = 1 THEN 'open' ELSE 'paid' END,
       CASE WHEN g % 50 = 0 THEN 'EUR' END, 1 + (g * 7919) % 1000,
       timestamptz '2020-01-01' + g * interval '10 minutes', repeat('x', 60) || g,
       'user' || (g % 50) || '@example.com', 'k' || (g % 1000)
FROM generate_series(1, 200000) g;
CREATE TABLE settings (key text PRIMARY KEY, value text);
INSERT INTO settings SELECT 'k' || g, 'v' FROM generate_series(1, 50) g;
ANALYZE;
"""

# Conditions a migration filters on; the real count decides what is "right".
PREDICATES = [
    "status = 'paid'",
    "status = 'open'",
    "currency IS NULL",
    "amount < 100",
    "amount >= 250 AND status = 'paid'",
    "created_at < '2021-01-01'",
    "status IN ('open', 'x') OR currency = 'EUR'",
    "id <= 5000",
    "status IS NULL",
    "NOT status = 'open'",
]


@pytest.fixture
def shop(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def _real(dsn: str, predicate: str) -> int:
    """Rows the UPDATE really touches: run it, read the row count, roll back."""
    with psycopg.connect(dsn) as c:
        cur = c.execute(f"UPDATE invoices SET currency = 'USD' WHERE {predicate}")
        touched = cur.rowcount
        c.rollback()
    return touched


def _pw142(findings: tuple[Finding, ...]) -> dict[int, Finding]:
    return {f.location.line: f for f in findings if f.code == "PW142"}


def _estimated(f: Finding) -> int:
    m = re.search(r"about ([\d,]+) of ([\d,]+) rows", f.message)
    assert m, f.message
    return int(m.group(1).replace(",", ""))


def _migration(tmp_path: Path, verb: str = "UPDATE invoices SET currency = 'USD'") -> Path:
    f = tmp_path / "001.sql"
    f.write_text("\n".join(f"{verb} WHERE {p};" for p in PREDICATES) + "\n")
    return f


@pytest.mark.parametrize("source", ["stats", "planner"])
def test_estimates_match_the_real_row_counts(shop: str, tmp_path: Path, source: str) -> None:
    mig = _migration(tmp_path)
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(shop, sample_s=0), snap)
    ctx = load_context(stats_file=snap)
    _, result = lint([mig], context=ctx, preflight_dsn=shop if source == "planner" else None)
    found = _pw142(result.findings)
    limits = Settings()
    for line, predicate in enumerate(PREDICATES, 1):
        real = _real(shop, predicate)
        big = real > limits.dml_max_rows or real / 200_000 > limits.dml_max_share * 1.05
        small = real < limits.dml_max_share * 200_000 * 0.95
        if big:
            assert line in found, (predicate, real)
            est = _estimated(found[line])
            assert abs(est - real) <= 0.1 * real, (predicate, est, real)
            expected = Severity.ERROR if real > limits.dml_max_rows else Severity.WARNING
            assert found[line].severity is expected, (predicate, found[line])
            assert "pgwarden backfill" in found[line].help
            word = "planner estimate" if source == "planner" else "column statistics"
            assert word in found[line].message
        elif small:
            assert line not in found, (predicate, real, found.get(line))
    # EXPLAIN only: nothing was updated.
    assert _real(shop, "currency = 'USD'") == 0


def test_delete_of_most_rows_is_an_error(shop: str, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text("DELETE FROM invoices WHERE status <> 'open';\n")
    _, result = lint([f], context=load_context(database_url=shop), preflight_dsn=shop)
    (hit,) = _pw142(result.findings).values()
    assert hit.severity is Severity.ERROR
    assert abs(_estimated(hit) - _real(shop, "status <> 'open'")) < 0.1 * 200_000
    assert hit.message.startswith("deletes about ")
    assert _real(shop, "true") == 200_000


def test_limits_come_from_the_settings(shop: str, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text("UPDATE invoices SET currency = 'USD' WHERE id <= 5000;\n")
    ctx = load_context(database_url=shop)
    _, loose = lint([f], context=ctx, preflight_dsn=shop)
    assert not _pw142(loose.findings)
    strict = Settings(dml_max_rows=1000, dml_max_share=0.5)
    _, tight = lint([f], context=ctx, preflight_dsn=shop, settings=strict)
    (hit,) = _pw142(tight.findings).values()
    assert hit.severity is Severity.ERROR and "dml_max_rows = 1,000" in hit.message


def test_without_stats_the_size_is_unknown(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text("UPDATE invoices SET currency = 'USD' WHERE status = 'paid';\n")
    _, result = lint([f], context=Context(None, None, 16, "none"))
    (hit,) = _pw142(result.findings).values()
    assert hit.severity is Severity.NOTE
    assert "how many is unknown (no stats given)" in hit.message
    assert "--stats" in hit.help and "--database-url" in hit.help


def test_unknown_size_is_said_once_per_file(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(
        "".join(f"UPDATE invoices SET status = 'paid' WHERE id = {i};\n" for i in range(50))
    )
    _, result = lint([f], context=Context(None, None, 16, "none"))
    assert len(_pw142(result.findings)) == 1


def test_small_or_new_tables_are_not_flagged(shop: str, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(
        "UPDATE settings SET value = 'w' WHERE value = 'v';\n"
        "CREATE TABLE fresh (id int, v text);\n"
        "UPDATE fresh SET v = 'x' WHERE v IS NULL;\n"
    )
    _, result = lint([f], context=load_context(database_url=shop), preflight_dsn=shop)
    assert not _pw142(result.findings)


def test_snapshot_keeps_column_statistics_small(shop: str, tmp_path: Path) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(shop, sample_s=0), snap)
    loaded = load_snapshot(snap)
    cols = loaded.stats.columns
    assert "settings" not in cols  # too small to matter
    assert set(cols["invoices"]) >= {"id", "status", "currency", "amount", "created_at"}
    assert cols["invoices"]["status"].mcv[:2] == ("paid", "open")
    assert len(cols["invoices"]["id"].bounds) <= 11
    assert cols["invoices"]["note"].bounds == ()  # values longer than 40 characters: left out
    assert snap.stat().st_size < 20_000, snap.stat().st_size
    # No value that could be private leaves the database: an e-mail column (50 distinct
    # values) keeps only its null fraction and distinct count; so does a free-text column
    # with many distinct values.
    assert cols["invoices"]["email"].mcv == () and cols["invoices"]["email"].bounds == ()
    assert cols["invoices"]["kind"].mcv == () and cols["invoices"]["kind"].bounds == ()
    assert "@example.com" not in snap.read_text()


def test_planner_does_not_queue_behind_a_held_lock(shop: str, tmp_path: Path) -> None:
    """Planning an UPDATE takes ROW EXCLUSIVE: with the table locked by another session,
    the EXPLAIN gives up at its lock_timeout and the column statistics decide."""
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(shop, sample_s=0), snap)
    f = tmp_path / "001.sql"
    f.write_text("UPDATE invoices SET currency = 'USD' WHERE status = 'paid';\n")
    with psycopg.connect(shop) as holder:
        holder.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        _, result = lint([f], context=load_context(stats_file=snap), preflight_dsn=shop)
        holder.rollback()
    (hit,) = _pw142(result.findings).values()
    assert "estimate from column statistics" in hit.message


def test_every_server_version_gives_both_estimates(pg_any: Cluster, tmp_path: Path) -> None:
    """pg_stats and EXPLAIN (FORMAT JSON) read the same on PostgreSQL 15-18."""
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SCHEMA.replace("200000", "40000"))
    f = tmp_path / "001.sql"
    f.write_text("UPDATE invoices SET currency = 'USD' WHERE status = 'paid';\n")
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(dsn, sample_s=0), snap)
    hits = []
    for pre in (None, dsn):
        _, result = lint([f], context=load_context(stats_file=snap), preflight_dsn=pre)
        (hit,) = _pw142(result.findings).values()
        assert ("planner estimate" in hit.message) == (pre is not None)
        hits.append(hit)
    real = _real(dsn, "status = 'paid'")  # last: its rollback leaves dead rows the planner counts
    for hit in hits:
        assert abs(_estimated(hit) - real) <= 0.1 * real, (pg_any, hit.message, real)
