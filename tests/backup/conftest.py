"""Shared pieces for backup tests: a small shop database and the CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

SHOP_SQL = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, born date, score float8,
                        tags text[]);
INSERT INTO customers SELECT g, 'customer ' || g, date '1970-01-01' + g, g / 7.0,
                             ARRAY['a', 'b' || g] FROM generate_series(1, 3000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     total numeric(12, 2), payload jsonb, raw bytea,
                     created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders (customer_id, total, payload, raw)
  SELECT 1 + g % 3000, g * 1.25, jsonb_build_object('n', g), decode(md5(g::text), 'hex')
  FROM generate_series(1, 20000) g;
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE "Odd Name" (k text PRIMARY KEY, v interval);
INSERT INTO "Odd Name" VALUES ('a', '1 day 2 hours'), ('b', NULL);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 1000;
"""


def make_shop(cluster: Cluster) -> str:
    """A fresh database with a few typed tables; its DSN."""
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SHOP_SQL)
    return dsn


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`pgwarden ARGS` in a subprocess, as a user would run it."""
    env = {**os.environ, "COLUMNS": "200"}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def assert_clean_error(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.startswith("pgwarden: error:"), r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    return tmp_path / "catalogue"
