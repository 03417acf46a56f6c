"""The initial copy's row total counts rows written since the table was last analyzed:
a bulk load after ANALYZE no longer reads as a finished copy (real server)."""

from __future__ import annotations

import psycopg

from pgwarden.upgrade.logical import published_tables


def test_rows_inserted_after_analyze_count_in_the_estimate(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(
            "CREATE TABLE orders (id int PRIMARY KEY) WITH (autovacuum_enabled = false);"
            "INSERT INTO orders SELECT generate_series(1, 1000); ANALYZE orders"
        )
        c.execute("INSERT INTO orders SELECT generate_series(1001, 20000)")  # a bulk load
        c.execute("DELETE FROM orders WHERE id <= 10")
        c.execute("SELECT pg_stat_force_next_flush()")
        c.execute("SELECT 1")
        (reltuples,) = c.execute(
            "SELECT reltuples FROM pg_class WHERE relname = 'orders'"
        ).fetchone() or (0,)
        estimates = {t.name: t.estimate for t in published_tables(c)}
    assert reltuples == 1000  # the planner's figure stays that of the last ANALYZE
    # before: 1,000, so a copy of 19,990 rows read 'about 1,000 of 1,000 rows' from the start
    assert estimates == {"orders": 19990}, estimates
