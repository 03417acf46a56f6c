"""Shared by the `upgrade run` tests: clusters started with wal_level=logical, a write load
with acknowledged ids, and what is left on each side (slots, publications, subscriptions)."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import psycopg.sql
import pytest

from pgwarden.apply.identity import stamp_database
from pgwarden.errors import PostgresNotFound
from pgwarden.events import Event
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.upgrade.logical import Sides

LOGICAL = {
    "wal_level": "logical",
    "max_replication_slots": "30",
    "max_wal_senders": "30",
    "max_logical_replication_workers": "30",
    "max_worker_processes": "40",
    "wal_sender_timeout": "10s",
}
_n = itertools.count()


class LogicalClusters:
    def __init__(self) -> None:
        self.by_major: dict[int, Cluster] = {}

    def get(self, major: int) -> Cluster:
        c = self.by_major.get(major)
        if c is None or not c.running:
            try:
                inst = find_installation(major)
            except PostgresNotFound as exc:
                pytest.skip(f"PostgreSQL {major} is not installed: {exc}")
            c = Cluster.start(inst, settings=LOGICAL)
            self.by_major[major] = c
        return c

    def stop(self) -> None:
        # Subscriptions left running (switched upgrades keep their reverse replication)
        # make an immediate shutdown wait for its 5 s SIGKILL fallback: end them first.
        for c in self.by_major.values():
            with contextlib.suppress(psycopg.Error):
                _drop_subscriptions(c)
        for c in self.by_major.values():
            c.stop()


def _drop_subscriptions(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        subs = conn.execute(
            "SELECT d.datname, s.subname FROM pg_subscription s "
            "JOIN pg_database d ON d.oid = s.subdbid"
        ).fetchall()
    for db, name in subs:
        with psycopg.connect(cluster.dsn(str(db)), autocommit=True) as conn:
            ident = psycopg.sql.Identifier(str(name))
            conn.execute(psycopg.sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
            conn.execute(
                psycopg.sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident)
            )
            conn.execute(psycopg.sql.SQL("DROP SUBSCRIPTION {}").format(ident))


@pytest.fixture(scope="session")
def logical_clusters() -> Iterator[LogicalClusters]:
    clusters = LogicalClusters()
    yield clusters
    clusters.stop()


@dataclass
class Pair:
    old: Cluster
    new: Cluster
    old_dsn: str
    new_dsn: str

    @property
    def sides(self) -> Sides:
        return Sides(self.old_dsn, self.new_dsn, self.old_dsn, self.new_dsn)

    def old_url(self) -> str:
        return self.old.url(self.old_dsn.split("dbname=")[1].split()[0])

    def new_url(self) -> str:
        return self.new.url(self.new_dsn.split("dbname=")[1].split()[0])


SCHEMA = """
CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz DEFAULT now());
CREATE TABLE items (order_id bigint REFERENCES orders, n int, PRIMARY KEY (order_id, n));
CREATE TABLE settings (k text, v text);
ALTER TABLE settings REPLICA IDENTITY FULL;
INSERT INTO orders (note) SELECT 'seed ' || g FROM generate_series(1, 2000) g;
INSERT INTO items SELECT o, 1 FROM generate_series(1, 2000) o;
INSERT INTO settings VALUES ('a', '1');
ANALYZE;
"""


def run_args(pair: Pair, *extra: str) -> list[str]:
    """`upgrade run` arguments from `pair`'s OLD to its NEW, as environment dev, confirmed
    (--yes); `extra` options after them."""
    return [
        "run",
        "--database-url",
        pair.old_dsn,
        "--target-url",
        pair.new_dsn,
        "--env",
        "dev",
        "--yes",
        *extra,
    ]


def make_pair(clusters: LogicalClusters, old_major: int, new_major: int) -> Pair:
    old, new = clusters.get(old_major), clusters.get(new_major)
    name = f"up_{next(_n)}"
    old_dsn = old.create_database(name)
    new_dsn = new.create_database(name)
    with psycopg.connect(old_dsn, autocommit=True) as c:
        c.execute(SCHEMA)
        # OLD holds data: `upgrade run` needs it stamped as the --env of `run_args` (as
        # apply does); protected, as an undeclared environment with no stamp would be
        stamp_database(c, "dev", protected=True, by="upgrade-tests")
    return Pair(old, new, old_dsn, new_dsn)


@dataclass
class Writer:
    """Inserts into `orders` from a thread; keeps every id the server acknowledged.

    It writes to OLD until `target` is switched (by the switch hook touching a file,
    or by the test), reconnecting after errors (read-only, terminated sessions)."""

    dsn: str
    acked: list[tuple[float, int]] = field(default_factory=list)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def retarget(self, dsn: str) -> None:
        with self.lock:
            self.dsn = dsn

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                dsn = self.dsn
            try:
                with psycopg.connect(
                    dsn, autocommit=True, connect_timeout=3, prepare_threshold=None
                ) as c:
                    while not self.stop.is_set():
                        with self.lock:
                            if self.dsn != dsn:
                                break
                        row = c.execute(
                            "INSERT INTO orders (note) VALUES ('load') RETURNING id"
                        ).fetchone()
                        assert row is not None
                        self.acked.append((time.monotonic(), int(row[0])))
                        time.sleep(0.003)
            except psycopg.Error:
                self.errors += 1
                time.sleep(0.01)

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def ids(self) -> set[int]:
        return {i for _, i in self.acked}


def ids_on(dsn: str) -> set[int]:
    with psycopg.connect(dsn) as c:
        return {int(str(r[0])) for r in c.execute("SELECT id FROM orders")}


def leftovers(dsn: str) -> dict[str, list[str]]:
    """Replication objects of pgwarden on one side."""
    with psycopg.connect(dsn) as c:
        return {
            "slots": [
                str(r[0])
                for r in c.execute(
                    "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
                )
            ],
            "publications": [str(r[0]) for r in c.execute("SELECT pubname FROM pg_publication")],
            "subscriptions": [
                str(r[0])
                for r in c.execute(
                    "SELECT subname FROM pg_subscription s JOIN pg_database d "
                    "ON d.oid = s.subdbid WHERE d.datname = current_database()"
                )
            ],
        }


def can_write(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO settings VALUES ('probe', 'x')")
        return True
    except psycopg.errors.ReadOnlySqlTransaction:
        return False


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.seen]


@pytest.fixture(autouse=True)
def clean_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty directory: no pgwarden.toml of the checkout decides --env."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
