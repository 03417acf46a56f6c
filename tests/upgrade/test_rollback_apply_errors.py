"""A rollback whose reverse replication fails to apply NEW's writes on OLD (a row OLD's
constraints refuse) stops as soon as OLD's apply worker fails, and NEW takes writes
again, instead of keeping NEW frozen for the whole --timeout (real clusters)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from pgwarden.upgrade.journal import find_latest
from tests.upgrade.run_support import can_write, clean_cwd, make_pair, run_args

__all__ = ["clean_cwd"]


def test_rollback_stops_when_old_cannot_apply_news_writes(logical_clusters, tmp_path: Path) -> None:
    pair = make_pair(logical_clusters, 15, 17)
    runner = CliRunner()
    ran = runner.invoke(
        upgrade,
        run_args(
            pair, "--no-verify", "--no-write-check", "--journal-file", str(tmp_path / "j.jsonl")
        ),
    )
    assert ran.exit_code == 0, ran.output
    both = ("--database-url", pair.old_dsn, "--target-url", pair.new_dsn)
    # OLD refuses a row that NEW accepts: OLD's apply worker fails on it, and again after
    # each restart, while the subscription stays enabled and its slot streams.
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = off")
        c.execute("ALTER TABLE orders ADD CONSTRAINT no_poison CHECK (note <> 'poison') NOT VALID")
    with psycopg.connect(pair.new_dsn, autocommit=True) as c:
        c.execute("INSERT INTO orders (note) VALUES ('poison')")

    result = runner.invoke(
        upgrade, ["rollback", *both, "--timeout", "300", "--journal-file", str(tmp_path / "r")]
    )
    assert result.exit_code == 3, result.output
    assert "failed to apply NEW's writes" in result.output, result.output
    assert "OLD's server log" in result.output and "NEW takes writes again" in result.output
    assert can_write(pair.new_dsn)  # unfrozen
    with psycopg.connect(pair.old_dsn) as c:
        record = find_latest(c, None)
    assert record is not None and record.state == "switched"

    # The cause removed, the same rollback goes through.
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = off")
        c.execute("ALTER TABLE orders DROP CONSTRAINT no_poison")
    again = runner.invoke(upgrade, ["rollback", *both, "--journal-file", str(tmp_path / "r")])
    assert again.exit_code == 0, again.output
    with psycopg.connect(pair.old_dsn) as c:
        assert c.execute("SELECT count(*) FROM orders WHERE note = 'poison'").fetchone() == (1,)
