"""The incident's tables (`payment_accounts`, a sizeable `invoices`) and light traffic on them.

Used by the demo, the benchmarks and the tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg

__all__ = ["SCHEMA_SQL", "create_sample_schema", "light_traffic"]

SCHEMA_SQL = """
CREATE TABLE payment_accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner text NOT NULL,
    iban text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_account_id bigint NOT NULL REFERENCES payment_accounts (id),
    amount_cents integer NOT NULL,
    status text DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_payment_account_id_idx ON invoices (payment_account_id);
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO settings VALUES ('currency', 'EUR'), ('vat', '21');
"""


def create_sample_schema(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    invoices_rows: int,
    accounts_rows: int = 50_000,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 250_000,
) -> None:
    """Create and fill the incident's tables (autocommit connection)."""
    conn.execute(SCHEMA_SQL)
    conn.execute(
        "INSERT INTO payment_accounts (owner, iban) "
        "SELECT 'owner ' || g, 'NL' || lpad(g::text, 16, '0') FROM generate_series(1, %s) g",
        (accounts_rows,),
    )
    done = 0
    while done < invoices_rows:
        n = min(chunk, invoices_rows - done)
        conn.execute(
            "INSERT INTO invoices (payment_account_id, amount_cents, status, created_at) "
            "SELECT 1 + (g * 7919) %% %s, (g * 31) %% 100000, "
            "CASE WHEN g %% 10 = 0 THEN 'paid' ELSE 'open' END, "
            "now() - (g || ' seconds')::interval FROM generate_series(%s::bigint, %s::bigint) g",
            (accounts_rows, done + 1, done + n),
        )
        done += n
        if on_progress is not None:
            on_progress(n)
    conn.execute("VACUUM ANALYZE payment_accounts, invoices, settings")


def light_traffic(dsn: str, stop: threading.Event, accounts_rows: int) -> None:
    """Point reads and inserts on invoices until `stop` is set."""
    with psycopg.connect(dsn, autocommit=True) as c:
        i = 0
        while not stop.is_set():
            i += 1
            c.execute("SELECT * FROM invoices WHERE id = %s", (i * 37 % 1000 + 1,))
            c.execute(
                "SELECT id, amount_cents FROM invoices WHERE payment_account_id = %s "
                "ORDER BY id DESC LIMIT 20",
                (i * 13 % accounts_rows + 1,),
            )
            c.execute(
                "INSERT INTO invoices (payment_account_id, amount_cents) VALUES (%s, %s)",
                (i % accounts_rows + 1, i),
            )
            time.sleep(0.01)
