"""Unique keys whose types hold few values (country codes, flags): the table gets the rows
its keys can hold, and says so; foreign keys pointing at it stay valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from pgwarden.rehearse.datagen import TablePlan, fill, read_tables
from tests.rehearse.conftest import write

SCHEMA = """
CREATE TYPE size AS ENUM ('s', 'm', 'l');
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE currencies (code varchar(3) UNIQUE NOT NULL, name text NOT NULL);
CREATE TABLE cities (id bigserial PRIMARY KEY,
    country char(2) NOT NULL REFERENCES countries (code), name text NOT NULL);
CREATE TABLE levels (n smallint UNIQUE NOT NULL);
CREATE TABLE variants (big boolean NOT NULL, size size NOT NULL, PRIMARY KEY (big, size));
"""


def test_rows_capped_to_what_unique_keys_hold(conn: psycopg.Connection[tuple[object, ...]]):
    conn.execute(SCHEMA)
    tables = read_tables(conn)
    notes = fill(conn, tables, [TablePlan(n, 40_000) for n in tables])
    count = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}
    assert count == {
        "countries": (1_296,),  # 36 ** 2
        "currencies": (40_000,),  # 36 ** 3 = 46,656 fit
        "cities": (40_000,),
        "levels": (32_000,),
        "variants": (6,),  # 2 x 3: the key's values repeat after lcm(2, 3) rows
    }
    assert sorted(notes) == [
        "countries: 40,000 rows asked, 1,296 fit its unique key (code character(2))",
        "levels: 40,000 rows asked, 32,000 fit its unique key (n smallint)",
        "variants: 40,000 rows asked, 6 fit its unique key (big boolean, size size)",
    ]
    # Foreign keys were skipped while loading: validating them proves them valid.
    conn.execute("ALTER TABLE cities DROP CONSTRAINT cities_country_fkey")
    conn.execute("ALTER TABLE cities ADD FOREIGN KEY (country) REFERENCES countries (code)")
    assert conn.execute("SELECT count(DISTINCT country) FROM cities").fetchone() == (1_296,)


def test_a_check_wanting_letters_gets_letters(conn: psycopg.Connection[tuple[object, ...]]):
    conn.execute(
        "CREATE DOMAIN iso3 AS char(3) CHECK (VALUE ~ '^[A-Z]{3}$');"
        "CREATE TABLE currencies (code iso3 PRIMARY KEY);"
        "CREATE TABLE countries (code char(2) PRIMARY KEY CHECK (code ~ '^[A-Z]{2}$'));"
        "CREATE TABLE cities (id int PRIMARY KEY, country char(2) NOT NULL REFERENCES countries);"
    )
    tables = read_tables(conn)
    notes = fill(conn, tables, [TablePlan(n, 20_000) for n in tables], chunk=5_000)
    count = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}
    # 26 ** 2 = 676 country codes (the CHECK refused the digits), 26 ** 3 = 17,576 currencies
    assert count == {"currencies": (17_576,), "countries": (676,), "cities": (20_000,)}
    assert sorted(notes) == [
        "countries: 20,000 rows asked, 676 fit its unique key (code character(2))",
        "currencies: 20,000 rows asked, 17,576 fit its unique key (code iso3)",
    ]
    assert conn.execute(
        "SELECT count(*) FROM cities WHERE country NOT IN (SELECT code FROM countries)"
    ).fetchone() == (0,)


def test_rehearsal_completes_on_code_tables(run: Any, tmp_path: Path):
    plan = write(tmp_path, "001.sql", "ALTER TABLE cities ADD COLUMN zip text;\n")
    result = run([plan], schema_sql=SCHEMA, default_rows=10_000)
    assert result.status == "completed", result
    rows = {t.name: t.rows for t in result.tables}
    assert rows["countries"] == 1_296 and rows["currencies"] == rows["cities"] == 10_000
    assert "countries: 10,000 rows asked, 1,296 fit its unique key (code character(2))" in (
        result.notes
    )
