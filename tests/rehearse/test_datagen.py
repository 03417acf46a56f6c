"""Synthetic data: valid foreign keys, unique keys, NOT NULL filled, CHECKs respected."""

from __future__ import annotations

import psycopg

from pgwarden.rehearse.datagen import TablePlan, fill, insert_one, read_tables

SCHEMA = """
CREATE TYPE mood AS ENUM ('calm', 'busy', 'angry');
CREATE DOMAIN short_code AS varchar(6);
CREATE TABLE accounts (id bigserial PRIMARY KEY, code short_code NOT NULL UNIQUE,
    email text NOT NULL UNIQUE, active boolean NOT NULL, ref uuid UNIQUE);
CREATE TABLE orders (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    parent_id integer REFERENCES orders (id),
    mood mood NOT NULL,
    placed date NOT NULL,
    at timestamptz NOT NULL,
    total numeric(6, 2) CHECK (total < 50),
    doc jsonb NOT NULL,
    tags text[] NOT NULL,
    addr inet,
    tiny smallint NOT NULL,
    total_x2 numeric GENERATED ALWAYS AS (total * 2) STORED
);
CREATE TABLE order_notes (order_id integer PRIMARY KEY REFERENCES orders (id), note text NOT NULL);
CREATE TABLE pairs (a int NOT NULL, b text NOT NULL, PRIMARY KEY (a, b));
"""


def test_fill_respects_every_constraint(conn: psycopg.Connection[tuple[object, ...]]):
    conn.execute(SCHEMA)
    tables = read_tables(conn)
    assert set(tables) == {"accounts", "orders", "order_notes", "pairs"}
    seen: list[tuple[str, int, int]] = []
    fill(
        conn,
        tables,
        [
            TablePlan("accounts", 500),
            TablePlan("orders", 3_000),
            TablePlan("order_notes", 5_000),
            TablePlan("pairs", 1_000),
        ],
        chunk=700,
        progress=lambda t, done, total: seen.append((t, done, total)),
    )
    count = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}
    # order_notes is 1:1 with orders (its key is the FK): capped at the parent's rows.
    assert count == {
        "accounts": (500,),
        "orders": (3_000,),
        "order_notes": (3_000,),
        "pairs": (1_000,),
    }
    assert seen[-1] == ("pairs", 1_000, 1_000) or ("pairs", 1_000, 1_000) in seen
    assert ("orders", 700, 3_000) in seen  # chunked progress
    # Foreign keys were skipped while loading: validating them proves the data valid.
    for table, con in [
        ("orders", "orders_account_id_fkey"),
        ("orders", "orders_parent_id_fkey"),
        ("order_notes", "order_notes_order_id_fkey"),
    ]:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {con}")
    conn.execute(
        "ALTER TABLE orders ADD FOREIGN KEY (account_id) REFERENCES accounts (id);"
        "ALTER TABLE orders ADD FOREIGN KEY (parent_id) REFERENCES orders (id);"
        "ALTER TABLE order_notes ADD FOREIGN KEY (order_id) REFERENCES orders (id);"
    )
    # The CHECK on total rejected generated values: the column fell back to NULL.
    assert conn.execute("SELECT count(*) FROM orders WHERE total IS NOT NULL").fetchone() == (0,)
    assert conn.execute("SELECT count(DISTINCT mood) FROM orders").fetchone() == (3,)
    # Sequences moved past the keys: the application's next insert works.
    conn.execute("INSERT INTO accounts (code, email, active) VALUES ('x', 'x@example.com', true)")
    conn.execute(
        "INSERT INTO orders (account_id, mood, placed, at, doc, tags, tiny) "
        "VALUES (1, 'calm', now(), now(), '{}', '{}', 1)"
    )
    # Probe inserts (rows beyond the loaded ones) satisfy every constraint too.
    for table in ("accounts", "orders", "pairs"):
        conn.execute(insert_one(tables, table, 10_000_000))
