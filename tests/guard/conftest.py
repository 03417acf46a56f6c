from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture
def invoices_db(db: str) -> str:
    """A fresh database with a small `invoices` table."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE invoices (id int PRIMARY KEY, amount int NOT NULL)")
        c.execute("INSERT INTO invoices SELECT g, g * 10 FROM generate_series(1, 100) g")
    return db


@pytest.fixture
def admin(invoices_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection for inspecting pg_stat_activity and holding locks."""
    with psycopg.connect(invoices_db, autocommit=True, application_name="guard-admin") as c:
        yield c


class Locker:
    """Holds ACCESS EXCLUSIVE on invoices until released."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, application_name="guard-locker")

    def __enter__(self) -> Locker:
        self.conn.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback()
        self.conn.close()


def backends(admin: psycopg.Connection[tuple[object, ...]], app_name: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name]
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def lock_waiters(admin: psycopg.Connection[tuple[object, ...]], app_name: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND wait_event_type = 'Lock'",
        [app_name],
    ).fetchone()
    assert row is not None
    return int(str(row[0]))
