"""The lag in seconds of a logical slot is shown only when the server measured it now.

pg_stat_replication.replay_lag is computed when the receiver replies; a receiver stuck
applying a transaction (here: a lock on NEW's table) sends no reply, and the server keeps
showing the last figure (a few milliseconds) while the bytes behind grow. `lag` says the
seconds are unknown then, and why; with nothing unconfirmed, 0 s is a real figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from pgwarden.upgrade import logical
from pgwarden.upgrade.logical import Lag, Names
from tests.upgrade.run_support import LogicalClusters, clean_cwd, make_pair

__all__ = ["clean_cwd"]


def _wait(check: Callable[[], bool], what: Callable[[], str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what()}"
        time.sleep(0.1)


def _caught_up(old: psycopg.Connection[tuple[object, ...]], name: str) -> bool:
    return (logical.lag(old, name) or Lag(1, None)).bytes == 0


def _server_lag(old: psycopg.Connection[tuple[object, ...]], name: str) -> object:
    row = old.execute(
        "SELECT extract(epoch FROM replay_lag) FROM pg_stat_replication "
        "WHERE application_name = %s",
        (name,),
    ).fetchone()
    return None if row is None else row[0]


def test_a_stuck_receiver_has_no_lag_in_seconds(logical_clusters: LogicalClusters) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    name = Names("lagtest").forward
    with (
        psycopg.connect(pair.old_dsn, autocommit=True) as old,
        psycopg.connect(pair.new_dsn, autocommit=True) as new,
    ):
        new.execute("CREATE TABLE orders (id bigint PRIMARY KEY, note text, at timestamptz)")
        logical.ensure_marker(new)
        tables = [t for t in logical.published_tables(old) if t.name == "orders"]
        logical.create_publication(old, name, tables)
        logical.create_subscription(new, name, pair.old_dsn, copy_data=True)
        try:
            _wait(lambda: _caught_up(old, name), lambda: "the copy")
            caught_up = logical.lag(old, name)
            assert caught_up is not None and caught_up.seconds == 0.0
            assert caught_up.describe() == "0 bytes, 0 ms"

            # writes applied until the server has a replay_lag measurement (it samples the
            # WAL it sends at most once a second)
            def measured() -> bool:
                old.execute("INSERT INTO orders (note) VALUES ('applied')")
                _wait(lambda: _caught_up(old, name), lambda: "the write")
                return _server_lag(old, name) is not None

            _wait(measured, lambda: "a replay_lag measurement", timeout_s=60)
            seen: list[tuple[Lag | None, object]] = []

            def stuck_and_stale() -> bool:
                """The lag now, and the server's replay_lag read right after it."""
                seen.append((logical.lag(old, name), _server_lag(old, name)))
                lag, server = seen[-1]
                return lag is not None and "no reply" in str(lag.unknown) and server is not None

            with psycopg.connect(pair.new_dsn) as blocker:
                blocker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
                old.execute("INSERT INTO orders (note) SELECT 'stuck' FROM generate_series(1, 50)")
                _wait(
                    stuck_and_stale, lambda: f"the stuck receiver's last reply to age: {seen[-3:]}"
                )
                blocker.rollback()
            stuck, server = seen[-1]
            assert stuck is not None and stuck.bytes > 0 and stuck.seconds is None
            assert "seconds unknown: no reply from the receiver for" in stuck.describe()
            # the server still shows its last measurement: the figure pgwarden declines
            assert server is not None and float(str(server)) < 2
        finally:
            logical.drop_subscription(new, name)
            logical.drop_publication(old, name)
