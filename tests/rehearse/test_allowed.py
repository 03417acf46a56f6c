"""Synthetic values from a column's allowed values (Django's choices): cycled, cast to the
column's type, left out where a unique key would repeat or the type refuses them."""

from __future__ import annotations

import psycopg

from pgwarden.rehearse.allowed import restrict
from pgwarden.rehearse.datagen import TablePlan, fill, read_tables

SCHEMA = """
CREATE TABLE "Kinds" (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE tickets (
    id bigserial PRIMARY KEY,
    state varchar(20) NOT NULL,
    priority smallint NOT NULL,
    owner_id int NOT NULL REFERENCES "Kinds" (id),
    code text NOT NULL UNIQUE,
    label text NOT NULL,
    flag text NOT NULL,
    UNIQUE (owner_id, label),
    UNIQUE (state, priority)
);
"""


def test_values_cycle_and_what_is_left_out_is_said(conn: psycopg.Connection[tuple[object, ...]]):
    conn.execute(SCHEMA)
    tables = read_tables(conn)
    used, notes = restrict(
        conn,
        tables,
        {
            ("tickets", "state"): ["open", "closed"],  # with priority, the key repeats
            ("tickets", "priority"): ["1", "2", "3"],
            ("tickets", "code"): ["a", "b"],  # unique on its own
            ("tickets", "label"): ["x", "y"],  # a key with a foreign key: a value per row
            ("tickets", "flag"): ["not a number"],
            ("Kinds", "name"): ["red", "green"],  # the table as the application names it
            ("nowhere", "x"): ["1"],
        },
    )
    assert used == ["tickets.priority", "tickets.label", "tickets.flag", '"Kinds".name']
    assert notes == [
        "tickets.state: synthetic values, not its 2 choices: it is in the unique key "
        "(state, priority) and no other column of it has a value per row",
        "tickets.code: synthetic values, not its 2 choices: it is in the unique key (code) and "
        "no other column of it has a value per row",
    ]
    fill(conn, tables, [TablePlan('"Kinds"', 300), TablePlan("tickets", 300)])
    rows = conn.execute(
        "SELECT array_agg(DISTINCT priority ORDER BY priority), array_agg(DISTINCT label "
        "ORDER BY label), count(DISTINCT state), count(DISTINCT code) FROM tickets"
    ).fetchone()
    assert rows == ([1, 2, 3], ["x", "y"], 300, 300)
    kinds = conn.execute('SELECT array_agg(DISTINCT name ORDER BY name) FROM "Kinds"').fetchone()
    assert kinds == (["green", "red"],)


def test_values_the_type_refuses_are_said_and_not_used(
    conn: psycopg.Connection[tuple[object, ...]],
):
    conn.execute("CREATE TABLE t (id serial PRIMARY KEY, n int NOT NULL)")
    tables = read_tables(conn)
    used, notes = restrict(conn, tables, {("t", "n"): ["one", "two"]})
    assert used == []
    assert notes == [
        "t.n: synthetic values, not its choices: its type integer does not take them "
        '(invalid input syntax for type integer: "one")'
    ]
    fill(conn, tables, [TablePlan("t", 100)])
    assert conn.execute("SELECT count(DISTINCT n) FROM t").fetchone() == (100,)
