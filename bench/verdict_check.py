"""How well lint's `error` verdict matches what a live PostgreSQL server does.

A corpus of single migration statements of the kinds real projects ship
(Rails, Django, Alembic, Flyway, Liquibase, raw SQL) is traced on throwaway
clusters (PostgreSQL 15 and the newest server found by default) against a
populated schema, at two table sizes, and linted with `pgwarden lint --format
json` three ways: from the SQL alone (one file per statement, no stats, default
settings); with `--database-url` of the traced database; and with context:
`--stats` of a `pgwarden stats dump` of the traced database (its catalog: the
schema as the live server has it) whose sizes are multiplied by
--context-scale (default 250: the 400k-row tables become 100M rows) and whose
tables are all busy, as production would be. The ground-truth label comes from
the trace only (its definition is printed). Prints the confusion matrices,
recall and precision of severity `error`, every disagreement with its
evidence, the SQL-alone figures again with `unknown_type_change = "error"`
(a type change whose current type is unknown always an error, as before
bench/alter_type_study.json graded them), and the figures per source: the
corpus tags its cases with `-- source: NAME` (frameworks: generated and
hand-written migrations of the common frameworks; squawk, eugene,
strong_migrations: the examples of those projects' tests and docs, restated on
this schema; realworld: Supabase DO blocks, framework output and data
migrations; study: every distinct type change of bench/alter_type_study.json,
on a customers column of the type it had just before).

Tracing: a transactional statement runs in `BEGIN ... ROLLBACK` and the own
backend's `pg_locks`, relfilenodes, `pg_stat_xact_user_tables` (scans, rows
updated/deleted), dropped columns and row counts are read before the rollback
(helpers from pgwarden.analysis.observe). A statement that cannot run in a
transaction block runs in autocommit while a blocker holds ACCESS EXCLUSIVE on
its table (the mode it queues for and every lock seen while it runs are
recorded), then its effect is undone. Durations: the minimum of up to 3 runs
at each size.

    .venv/bin/python bench/verdict_check.py [--versions 15,newest] [--small 20000]
        [--large 400000] [--db-lint newest|all|none] [--serial] [--only REGEX]
        [--verbose] [--dump traces.json] [--context-scale 250]

The statements are in bench/verdict_corpus.sql. About 10 minutes on 2 idle cores, 37 on
a shared 2-core machine at load 9-14 (the two servers are traced in parallel; --serial
for one after the other).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgwarden.analysis import observe as live
from pgwarden.pg.binaries import Installation, find_installation, find_installations
from pgwarden.pg.cluster import Cluster

PGWARDEN = str(Path(sys.executable).parent / "pgwarden")

# --------------------------------------------------------------------------------------
# Ground truth: definition (printed) and thresholds
# --------------------------------------------------------------------------------------

WRITE_BLOCKING = {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}
SCALE_RATIO = 2.0  # duration at the large size / at the small size
SCALE_DELTA_S = 0.0005  # and at least this many seconds more
HELD_FRACTION = 0.25  # non-transactional: a lock counts as held if seen in this share of polls

LABEL_DEFINITION = f"""\
Ground truth, from the trace only (server {{versions}}, tables at {{small:,}} and {{large:,}} rows):
  blocking   = the statement's backend holds (pg_locks, granted, read before ROLLBACK; for
               non-transactional statements: seen in >= {HELD_FRACTION:.0%} of the polls while
               it ran) a lock that conflicts with ROW EXCLUSIVE (SHARE, SHARE ROW EXCLUSIVE,
               EXCLUSIVE, ACCESS EXCLUSIVE) on a pre-existing populated table or partitioned
               table, or on an index of one (queries plan with every index locked), or
               ACCESS EXCLUSIVE on a pre-existing populated materialized view (a matview
               takes no writes, so only a read-blocking lock counts there);
  scales     = the statement rewrote (new relfilenode) or scanned (seq/index scans counted
               by pg_stat_xact_user_tables in its transaction) a pre-existing relation, AND
               its duration (min of up to 3 runs) at the large size is >= {SCALE_RATIO:g} x the
               duration at the small size and >= {SCALE_DELTA_S * 1000:g} ms longer (work that
               grows with the table: rewrite, validation scan, index build; a duration
               ratio alone is not trusted, sub-millisecond statements jitter);
  LOCK       = blocking AND scales;
  DESTROY    = a pre-existing table dropped, a pre-existing column dropped
               (pg_attribute.attisdropped), a pre-existing table emptied (count(*) > 0
               before, 0 after), or every row of a pre-existing table updated or deleted
               (n_tup_upd + n_tup_del in pg_stat_xact_user_tables >= its rows), checked
               on the small database (count(*) FROM ONLY, before ROLLBACK);
  dangerous  = LOCK or DESTROY.  A statement the server rejects is not labelled."""


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------

CLUSTER_SETUP = """
CREATE ROLE reporting;
CREATE ROLE app_rw;
CREATE ROLE app_owner;
"""

SCHEMA = """
CREATE SCHEMA billing;
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');
CREATE TYPE unused_kind AS ENUM ('a', 'b');
CREATE TYPE tokentypes AS ENUM ('Bearer');
CREATE DOMAIN email_addr AS text CONSTRAINT email_addr_check CHECK (VALUE LIKE '%@%');
ALTER DOMAIN email_addr ADD CONSTRAINT email_addr_lower CHECK (VALUE = lower(VALUE)) NOT VALID;
CREATE SEQUENCE invoice_number_seq;
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$;

CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    email email_addr NOT NULL,
    name varchar(100) NOT NULL,
    country char(2),
    created_at timestamp NOT NULL DEFAULT now(),
    legacy_code text,
    -- the current types of bench/alter_type_study.json's changes (`-- source: study`)
    signup_on date,
    age integer,
    profile json,
    settings jsonb,
    score numeric,
    balance numeric(10,0),
    height numeric(4,2),
    preferences text,
    last_login_at timestamp,
    device_uuid uuid,
    serial_number varchar,
    user_type varchar(1),
    display_name varchar(100),
    nickname varchar(20),
    flags varchar(200),
    website varchar(2048),
    tag_value varchar(250),
    company_name varchar(255),
    member_no varchar(30),
    reset_token varchar(32),
    token_type varchar(40),
    search_filter varchar(400),
    password_hash varchar(60),
    email_address varchar(75),
    group_name varchar(80)
);
INSERT INTO customers (email, name, country, created_at, legacy_code, signup_on, age, profile,
    settings, score, balance, height, preferences, last_login_at, device_uuid, serial_number,
    user_type, display_name, nickname, flags, website, tag_value, company_name, member_no,
    reset_token, token_type, search_filter, password_hash, email_address, group_name)
SELECT 'user' || g || '@example.com', 'Customer ' || g, (ARRAY['DE','FR','US','NL'])[1 + g % 4],
       timestamp '2020-01-01' + g * interval '1 minute', CASE WHEN g % 3 = 0 THEN 'L' || g END,
       date '2019-01-01' + g % 1500, 18 + g % 60, json_build_object('theme', 'dark', 'n', g),
       jsonb_build_object('lang', 'en', 'n', g % 7), (g % 5000) / 100.0, g % 100000,
       1.40 + (g % 60) / 100.0, format('{"newsletter": %s, "n": %s}', (g % 2 = 0)::text, g),
       timestamp '2022-01-01' + g * interval '37 minutes', md5('d' || g)::uuid,
       (1000000 + g)::text, (ARRAY['A','B','C'])[1 + g % 3], 'Customer display ' || g,
       'nick' || g, (ARRAY['', 'tagme', 'tagme,loop'])[1 + g % 3],
       'https://example.com/u/' || g, 'tag-' || md5(g::text), 'Company ' || g || ' GmbH',
       (500000 + g)::text, md5('t' || g), 'Bearer', 'country = ''DE'' AND id > ' || g,
       left('$2b$12$' || md5(g::text) || md5((g + 1)::text), 60), 'user' || g || '@example.com',
       'group ' || g % 50
FROM generate_series(1, @N10@) g;
CREATE UNIQUE INDEX customers_email_idx ON customers (email);
CREATE VIEW active_customers AS SELECT id, name FROM customers WHERE legacy_code IS NULL;

CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id bigint NOT NULL CONSTRAINT orders_customer_id_fkey REFERENCES customers (id),
    status order_status NOT NULL DEFAULT 'pending',
    amount numeric(10,2) NOT NULL,
    quantity integer NOT NULL CONSTRAINT orders_quantity_check CHECK (quantity > 0),
    note varchar(50),
    description text,
    external_ref varchar(64) NOT NULL,
    sku text CONSTRAINT orders_sku_not_null CHECK (sku IS NOT NULL),
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamptz,
    shipped_at timestamp,
    legacy_flag boolean,
    payload jsonb
);
INSERT INTO orders (customer_id, status, amount, quantity, note, description, external_ref, sku,
                    created_at, updated_at, shipped_at, legacy_flag, payload)
SELECT 1 + g % @N10@, (ARRAY['pending','paid','shipped','cancelled']::order_status[])[1 + g % 4],
       (g % 10000) / 100.0, 1 + g % 10, 'note ' || (g % 100), repeat('lorem ipsum ', 1 + g % 5),
       'ORD-' || g, 'SKU-' || (g % 5000), timestamp '2021-01-01' + g * interval '1 minute',
       timestamptz '2021-06-01 00:00+00' + g * interval '1 second',
       CASE WHEN g % 2 = 0 THEN timestamp '2021-01-02' + g * interval '1 minute' END,
       CASE g % 3 WHEN 0 THEN NULL ELSE g % 2 = 0 END,
       jsonb_build_object('k', g % 10, 'v', 'x')
FROM generate_series(1, @N@) g;
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX orders_created_at_idx ON orders (created_at);
CREATE UNIQUE INDEX orders_ext_ref_uidx ON orders (external_ref);
ALTER TABLE orders ADD CONSTRAINT orders_amount_nonneg CHECK (amount >= 0) NOT VALID;
CREATE TRIGGER orders_touch_updated_at BEFORE UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE line_items (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_id integer NOT NULL,
    product_code text NOT NULL,
    qty integer NOT NULL,
    price numeric(12,2)
);
INSERT INTO line_items (order_id, product_code, qty, price)
SELECT g, 'P' || (g % 1000), 1 + g % 7, (g % 5000) / 10.0 FROM generate_series(1, @N@) g;
CREATE INDEX line_items_order_id_idx ON line_items (order_id);
ALTER TABLE line_items ADD CONSTRAINT line_items_qty_positive CHECK (qty > 0) NOT VALID;
CREATE MATERIALIZED VIEW product_totals AS
  SELECT product_code, count(*) AS n, sum(qty) AS total_qty FROM line_items GROUP BY product_code;
CREATE UNIQUE INDEX product_totals_code_idx ON product_totals (product_code);

CREATE TABLE billing.invoices (
    id bigint PRIMARY KEY,
    order_id integer,
    total_cents integer NOT NULL,
    issued_at timestamptz,
    "Status" text
);
INSERT INTO billing.invoices
SELECT g, 2 * g, g % 100000, timestamptz '2022-01-01 00:00+00' + g * interval '1 minute', 'open'
FROM generate_series(1, @N2@) g;
ALTER TABLE billing.invoices ADD CONSTRAINT invoices_order_id_fkey
  FOREIGN KEY (order_id) REFERENCES orders (id) NOT VALID;

CREATE TABLE "UserAccounts" (
    "Id" serial PRIMARY KEY,
    "Email" text,
    "CreatedAt" timestamp without time zone NOT NULL DEFAULT now()
);
INSERT INTO "UserAccounts" ("Email", "CreatedAt")
SELECT 'Account' || g || '@Example.com', timestamp '2020-01-01' + g * interval '1 hour'
FROM generate_series(1, @N5@) g;

CREATE TABLE page_views (
    id bigint NOT NULL,
    session_id bigint,
    path text,
    viewed_at timestamptz NOT NULL
);
INSERT INTO page_views
SELECT g, g / 10, '/p/' || (g % 500), timestamptz '2023-01-01 00:00+00' + g * interval '1 second'
FROM generate_series(1, @N2@) g;
CREATE UNIQUE INDEX page_views_id_uidx ON page_views (id);

CREATE TABLE reservations (
    id bigint PRIMARY KEY,
    room integer NOT NULL,
    during tstzrange NOT NULL,
    room_label text GENERATED ALWAYS AS ('Room ' || room) STORED
);
INSERT INTO reservations (id, room, during)
SELECT g, g % 50, tstzrange(timestamptz '2024-01-01 00:00+00' + g * interval '1 hour',
                           timestamptz '2024-01-01 00:30+00' + g * interval '1 hour')
FROM generate_series(1, @N5@) g;

CREATE TABLE events (
    id bigint NOT NULL,
    occurred_at date NOT NULL,
    kind text,
    data jsonb
) PARTITION BY RANGE (occurred_at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO events
SELECT g, date '2023-01-01' + (g % 730), (ARRAY['click','view','buy'])[1 + g % 3],
       jsonb_build_object('n', g)
FROM generate_series(1, @N@) g;
CREATE TABLE events_2025 (LIKE events);
INSERT INTO events_2025 SELECT g, date '2025-01-01' + (g % 365), 'view', NULL
FROM generate_series(1, @N10@) g;
CREATE TABLE events_2026 (LIKE events,
  CONSTRAINT events_2026_bound CHECK (occurred_at >= '2026-01-01' AND occurred_at < '2027-01-01'));
INSERT INTO events_2026 SELECT g, date '2026-01-01' + (g % 365), 'view', NULL
FROM generate_series(1, @N10@) g;

CREATE TABLE metrics (
    id bigint,
    recorded_on date NOT NULL,
    value double precision
) PARTITION BY RANGE (recorded_on);
CREATE TABLE metrics_2024 PARTITION OF metrics FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE metrics_default PARTITION OF metrics DEFAULT;
INSERT INTO metrics SELECT g, date '2024-01-01' + (g % 366), g * 0.5
FROM generate_series(1, @N2@) g;
INSERT INTO metrics SELECT g, date '2019-01-01' + (g % 365), g * 0.5
FROM generate_series(1, @N2@) g;
CREATE TABLE metrics_2025 (LIKE metrics);
INSERT INTO metrics_2025 SELECT g, date '2025-01-01' + (g % 365), 1
FROM generate_series(1, @N10@) g;

CREATE TABLE audit_log_base (id bigint, msg text, created_at timestamptz);
CREATE TABLE audit_log_2023 () INHERITS (audit_log_base);
INSERT INTO audit_log_2023 SELECT g, 'm' || g, now() FROM generate_series(1, @N5@) g;
CREATE TABLE audit_log_2024 (id bigint, msg text, created_at timestamptz);
INSERT INTO audit_log_2024 SELECT g, 'm' || g, now() FROM generate_series(1, @N5@) g;

CREATE UNLOGGED TABLE import_staging (id integer, data text);
INSERT INTO import_staging SELECT g, md5(g::text) FROM generate_series(1, @N5@) g;
"""


def schema_sql(n: int) -> str:
    out = SCHEMA
    for token, value in (("@N10@", n // 10), ("@N5@", n // 5), ("@N2@", n // 2), ("@N@", n)):
        out = out.replace(token, str(value))
    return out


# --------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    sql: str
    prelude: tuple[str, ...] = ()  # session statements before it (also in the lint file)
    target: str = "orders"  # non-transactional: the table a blocker locks
    undo: tuple[str, ...] = ()  # non-transactional: statements restoring the schema
    source: str = "frameworks"  # whose material the case restates (`-- source: NAME`)


CORPUS_FILE = Path(__file__).with_name("verdict_corpus.sql")


def load_corpus(path: Path = CORPUS_FILE) -> list[Case]:
    """Cases from the corpus file: `-- case ID [| key: value]...` then the statement."""
    cases: list[Case] = []
    head: str | None = None
    body: list[str] = []
    source = "frameworks"

    def flush() -> None:
        if head is None:
            return
        name, *opts = (p.strip() for p in head.split("|"))
        kw: dict[str, Any] = {}
        for opt in opts:
            key, _, value = opt.partition(":")
            parts = tuple(v.strip() for v in value.split(";") if v.strip())
            kw[key.strip()] = parts[0] if key.strip() == "target" else parts
        text = " ".join(" ".join(body).split()).rstrip(";").strip()
        cases.append(Case(name, text, source=source, **kw))

    for line in path.read_text().splitlines():
        if line.startswith("-- source: "):
            flush()
            head, body = None, []
            source = line.removeprefix("-- source: ").split()[0]
        elif line.startswith("-- case "):
            flush()
            head, body = line[len("-- case ") :], []
        elif line.startswith("--") or head is None:
            continue
        else:
            body.append(line)
    flush()
    return cases


# --------------------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------------------

_ATTRS = """
SELECT a.attrelid::int8, a.attnum::int, a.attname::text, a.attisdropped
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.oid >= 16384 AND c.relkind IN ('r', 'p') AND a.attnum > 0
"""

_TUPLES = "SELECT relid::int8, n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"


@dataclass
class Trace:
    """What one statement did on one server at one size."""

    error: str | None = None
    transactional: bool = True
    locks: dict[str, set[str]] = field(default_factory=dict)  # relation -> pg modes
    waited_for: tuple[str, str] | None = None
    rewrites: set[str] = field(default_factory=set)
    scans: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    destroys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock_share: dict[tuple[str, str], float] = field(default_factory=dict)  # non-tx: poll share


@dataclass
class DbInfo:
    """Facts read once after set-up."""

    relkind: dict[str, str]  # relation name -> relkind
    rows: dict[int, int]  # oid of a table -> its own rows (not its inheritance children's)
    populated: set[str]  # tables, partitioned tables and matviews with rows
    index_table: dict[str, str]  # index name -> its table or matview


def _count(conn: psycopg.Connection[Any], name: str, only: bool) -> int:
    q = sql.SQL("SELECT count(*) FROM {}{}").format(sql.SQL("ONLY " if only else ""), sql.SQL(name))
    row = conn.execute(q).fetchone()
    return int(row[0]) if row else 0


def read_dbinfo(conn: psycopg.Connection[Any]) -> DbInfo:
    rels = live.relations(conn)
    relkind = {name: kind for name, _node, kind in rels.values()}
    rows: dict[int, int] = {}
    populated: set[str] = set()
    for oid, (name, _node, kind) in rels.items():
        if kind in ("r", "p", "m"):
            n = _count(conn, name, only=kind == "r")
            if kind == "r":
                rows[oid] = n
            if n:
                populated.add(name)
    index_table = {
        str(r[0]): str(r[1])
        for r in conn.execute(
            "SELECT indexrelid::regclass::text, indrelid::regclass::text FROM pg_index"
            " WHERE indexrelid >= 16384"
        )
    }
    return DbInfo(relkind, rows, populated, index_table)


def _attrs(conn: psycopg.Connection[Any]) -> dict[tuple[int, int], tuple[str, bool]]:
    return {(int(r[0]), int(r[1])): (str(r[2]), bool(r[3])) for r in conn.execute(_ATTRS)}


def _tuples(conn: psycopg.Connection[Any]) -> dict[int, int]:
    return {int(r[0]): int(r[1] or 0) for r in conn.execute(_TUPLES)}


def _destroyed(
    conn: psycopg.Connection[Any],
    info: DbInfo,
    before: dict[int, tuple[str, int, str]],
    after: dict[int, tuple[str, int, str]],
    attrs_before: dict[tuple[int, int], tuple[str, bool]],
    tup_before: dict[int, int],
) -> list[str]:
    out: list[str] = []
    for oid, (name, _node, kind) in before.items():
        if kind in ("r", "p") and oid not in after:
            out.append(f"drops table {name}")
    attrs_after = _attrs(conn)
    for key, (attname, dropped) in attrs_before.items():
        if dropped or key[0] not in after:
            continue
        now = attrs_after.get(key)
        if now is None or now[1]:
            out.append(f"drops column {before[key[0]][0]}.{attname}")
    tup_after = _tuples(conn)
    for oid, n in info.rows.items():
        if n == 0 or oid not in after:
            continue
        name = after[oid][0]
        changed = tup_after.get(oid, 0) - tup_before.get(oid, 0)
        if changed >= n:
            out.append(f"updates/deletes all {n} rows of {name}")
            continue
        if _count(conn, name, only=True) == 0:
            out.append(f"empties {name} ({n} rows)")
    return out


def _tx_once(conn: psycopg.Connection[Any], case: Case, info: DbInfo | None, detail: bool) -> Trace:
    tr = Trace()
    before = live.relations(conn) if detail else {}
    attrs_before = _attrs(conn) if detail and info else {}
    conn.execute("BEGIN")
    try:
        for p in case.prelude:
            conn.execute(p.encode())
        if detail:
            scans_before = live.scan_counts(conn)
            tup_before = _tuples(conn)
        t0 = time.perf_counter()
        conn.execute(case.sql.encode())
        tr.seconds = time.perf_counter() - t0
        if detail:
            rows = list(conn.execute(live.LOCKS_SQL, (conn.info.backend_pid,)))
            after = live.relations(conn)
            scans_after = live.scan_counts(conn)
            obs = live.Observed()
            live.name_locks(rows, before, after, obs)
            for rel, mode in obs.locks:
                tr.locks.setdefault(rel, set()).add(mode)
            old = {v[0] for v in before.values()}
            tr.created = {n for oid, (n, _, _) in after.items() if oid not in before} - old
            tr.rewrites = live.rewrites_between(before, after)
            tr.scans = {
                before[oid][0]
                for oid, n in scans_after.items()
                if oid in before and n > scans_before.get(oid, 0)
            }
            if info is not None:
                tr.destroys = _destroyed(conn, info, before, after, attrs_before, tup_before)
    finally:
        conn.execute("ROLLBACK")
    return tr


def _timed_reps(first: float, again: Any) -> float:
    """Min duration over up to 3 runs (fewer when a run is already long)."""
    best, spent = first, first
    for _ in range(2):
        if spent > 0.3:
            break
        t = again()
        best, spent = min(best, t), spent + t
    return best


def trace_case(
    dsn: str, conn: psycopg.Connection[Any], case: Case, info: DbInfo, destroys: bool
) -> Trace:
    """Trace `case` on one database (locks, rewrites, scans, destruction, min duration)."""
    try:
        tr = _tx_once(conn, case, info if destroys else None, detail=True)
    except psycopg.errors.ActiveSqlTransaction:
        return trace_autocommit(dsn, conn, case)
    except psycopg.Error as exc:
        return Trace(error=f"{exc.sqlstate}: {str(exc).splitlines()[0]}")
    tr.seconds = _timed_reps(tr.seconds, lambda: _tx_once(conn, case, None, False).seconds)
    if case.sql.split()[0].upper() in ("UPDATE", "DELETE", "INSERT"):
        conn.execute("VACUUM")  # the rolled-back rows would slow later statements
    return tr


def observe_nontx(dsn: str, conn: psycopg.Connection[Any], case: Case, tr: Trace) -> None:
    """Run `case` in autocommit while a blocker holds ACCESS EXCLUSIVE on its table.

    Like pgwarden.analysis.observe's `observe_autocommit`, but counts in how many polls
    each granted lock was seen once the statement got going, so that a brief lock
    (REINDEX CONCURRENTLY's swap) is told apart from a lock held during the work.
    """
    before = live.relations(conn)
    with (
        psycopg.connect(dsn, autocommit=True) as blocker,
        psycopg.connect(dsn, autocommit=True) as runner,
        psycopg.connect(dsn, autocommit=True) as watcher,
    ):
        blocker.execute("BEGIN")
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(case.target))
        )
        pid = runner.info.backend_pid
        error: list[BaseException] = []

        def run() -> None:
            try:
                runner.execute(case.sql.encode())
            except BaseException as exc:  # reported below
                error.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 20
        waited: tuple[int, str] | None = None
        while time.monotonic() < deadline and thread.is_alive():
            now = list(watcher.execute(live.LOCKS_SQL, (pid,)))
            pending = [r for r in now if not r[2]]
            if pending:
                waited = (int(pending[0][0]), str(pending[0][1]))
                break
            time.sleep(0.002)
        blocker.execute("ROLLBACK")
        polls: list[set[tuple[int, str]]] = []
        while thread.is_alive():
            polls.append(
                {(int(r[0]), str(r[1])) for r in watcher.execute(live.LOCKS_SQL, (pid,)) if r[2]}
            )
            thread.join(0.002)
        thread.join()
        if error:
            raise error[0]
    after = live.relations(conn)
    names = {oid: v[0] for oid, v in {**after, **before}.items()}
    seen: dict[tuple[str, str], int] = {}
    for poll in polls:
        for key in {(names.get(oid, str(oid)), mode) for oid, mode in poll}:
            seen[key] = seen.get(key, 0) + 1
    for (rel, mode), n in seen.items():
        if rel in {v[0] for v in before.values()}:
            tr.lock_share[(rel, mode)] = n / max(len(polls), 1)
            if n / max(len(polls), 1) >= HELD_FRACTION:
                tr.locks.setdefault(rel, set()).add(mode)
    if waited is not None:
        tr.waited_for = (names.get(waited[0], str(waited[0])), waited[1])
    old = {v[0] for v in before.values()}
    tr.created = {n for oid, (n, _, _) in after.items() if oid not in before} - old
    tr.rewrites = live.rewrites_between(before, after)


def trace_autocommit(dsn: str, conn: psycopg.Connection[Any], case: Case) -> Trace:
    """A statement that cannot run in a transaction block: observe under a blocker, time, undo."""
    tr = Trace(transactional=False)

    def undo() -> None:
        for u in case.undo:
            conn.execute(u.encode())

    try:
        observe_nontx(dsn, conn, case, tr)
    except psycopg.Error as exc:
        return Trace(error=f"{exc.sqlstate}: {str(exc).splitlines()[0]}", transactional=False)
    finally:
        try:
            undo()
        except psycopg.Error as exc:
            print(f"  undo of {case.id} failed: {exc}", flush=True)

    def once() -> float:
        t0 = time.perf_counter()
        conn.execute(case.sql.encode())
        t = time.perf_counter() - t0
        undo()
        return t

    tr.seconds = _timed_reps(once(), once)
    return tr


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------


@dataclass
class Server:
    cluster: Cluster
    dsn: dict[str, str]  # size name -> DSN
    url_large: str
    info: dict[str, DbInfo]

    @property
    def major(self) -> int:
        return self.cluster.installation.major


def start_server(inst: Installation, sizes: dict[str, int]) -> Server:
    t0 = time.perf_counter()
    cluster = Cluster.start(inst, settings={"autovacuum": "off"})
    ts = cluster.root / "ts_fast"
    ts.mkdir()
    st = os.stat(cluster.root)
    os.chown(ts, st.st_uid, st.st_gid)
    with psycopg.connect(cluster.dsn(), autocommit=True) as c:
        c.execute(CLUSTER_SETUP.encode())
        c.execute(sql.SQL("CREATE TABLESPACE fastspace LOCATION {}").format(sql.Literal(str(ts))))
    dsn: dict[str, str] = {}
    info: dict[str, DbInfo] = {}
    for name, n in sizes.items():
        dsn[name] = cluster.create_database(f"verdict_{name}")
        with psycopg.connect(dsn[name], autocommit=True) as c:
            c.execute(schema_sql(n).encode())
            c.execute("VACUUM ANALYZE")
            c.execute("CHECKPOINT")
            info[name] = read_dbinfo(c)
    print(
        f"  PostgreSQL {inst.version}: cluster and schema ready in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return Server(cluster, dsn, cluster.url("verdict_large"), info)


def trace_server(s: Server, cases: list[Case], verbose: bool) -> list[tuple[Trace, Trace]]:
    """Every case on both databases of one server: (small, large) traces."""
    out: list[tuple[Trace, Trace]] = []
    with (
        psycopg.connect(s.dsn["small"], autocommit=True) as small,
        psycopg.connect(s.dsn["large"], autocommit=True) as large,
    ):
        for c in (small, large):
            c.execute("SET lock_timeout = '30s'")
        for case in cases:
            ts = trace_case(s.dsn["small"], small, case, s.info["small"], destroys=True)
            tl = trace_case(s.dsn["large"], large, case, s.info["large"], destroys=False)
            out.append((ts, tl))
            if verbose:
                lb = label(ts, tl, s.info["large"])
                print(f"  pg{s.major} {case.id}: {evidence(lb)}", flush=True)
    return out


def dump(
    path: Path,
    cases: list[Case],
    servers: list[Server],
    traced: dict[int, list[tuple[Trace, Trace]]],
) -> None:
    def tr(t: Trace) -> dict[str, Any]:
        return {
            "error": t.error,
            "transactional": t.transactional,
            "locks": {k: sorted(v) for k, v in sorted(t.locks.items())},
            "lock_share": {f"{k[0]} {k[1]}": v for k, v in sorted(t.lock_share.items())},
            "waited_for": t.waited_for,
            "rewrites": sorted(t.rewrites),
            "scans": sorted(t.scans),
            "created": sorted(t.created),
            "destroys": t.destroys,
            "seconds": t.seconds,
        }

    data = {
        str(s.major): {
            "info": {
                "relkind": s.info["large"].relkind,
                "populated": sorted(s.info["large"].populated),
                "index_table": s.info["large"].index_table,
            },
            "cases": [
                {"id": c.id, "sql": c.sql, "prelude": c.prelude, "small": tr(a), "large": tr(b)}
                for c, (a, b) in zip(cases, traced[s.major], strict=True)
            ],
        }
        for s in servers
    }
    path.write_text(json.dumps(data, indent=1))


# --------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------


@dataclass
class Label:
    error: str | None
    lock: bool
    destroy: bool
    blocking: list[str]
    scales: bool
    small: Trace
    large: Trace

    @property
    def dangerous(self) -> bool:
        return self.lock or self.destroy


def label(small: Trace, large: Trace, info: DbInfo) -> Label:
    error = large.error or small.error
    blocking: list[str] = []
    for rel, modes in sorted(large.locks.items()):
        kind = info.relkind.get(rel)
        if kind in ("i", "I"):
            table = info.index_table.get(rel, "")
            if table not in info.populated:
                continue
            if large.locks.get(table, set()) & WRITE_BLOCKING:
                continue  # the table itself is listed
            hit = modes & WRITE_BLOCKING
            rel = f"{rel} (index of {table})"
        elif rel not in info.populated:
            continue
        elif kind in ("r", "p"):
            hit = modes & WRITE_BLOCKING
        else:
            hit = modes & {"AccessExclusiveLock"}
        if hit:
            blocking.append(f"{rel}={'/'.join(_SHORT[m] for m in sorted(hit, key=_ORDER.index))}")
    scales = (
        bool(large.rewrites or large.scans)
        and large.seconds >= SCALE_RATIO * small.seconds
        and large.seconds - small.seconds >= SCALE_DELTA_S
    )
    lock = bool(blocking) and scales and error is None
    destroy = bool(small.destroys) and error is None
    return Label(error, lock, destroy, blocking, scales, small, large)


def evidence(lb: Label) -> str:
    lg = lb.large
    parts = []
    if lb.error:
        return f"server error: {lb.error}"
    strongest = {rel: _strongest(modes) for rel, modes in sorted(lg.locks.items())}
    locks = ", ".join(f"{rel}:{m}" for rel, m in strongest.items() if not rel.endswith("_seq"))
    parts.append(f"locks[{locks or '-'}]")
    if lg.waited_for:
        parts.append(f"queued for {lg.waited_for[1]} on {lg.waited_for[0]}")
    if not lg.transactional:
        parts.append("non-transactional")
    if lg.rewrites:
        parts.append(f"rewrite[{', '.join(sorted(lg.rewrites))}]")
    if lg.scans:
        parts.append(f"scan[{', '.join(sorted(lg.scans))}]")
    ratio = lg.seconds / lb.small.seconds if lb.small.seconds else 0.0
    parts.append(
        f"t={lb.small.seconds * 1000:.1f}ms->{lg.seconds * 1000:.1f}ms (x{ratio:.1f}"
        f"{', scales' if lb.scales else ''})"
    )
    if lb.small.destroys:
        parts.append("destroys (small db)[" + "; ".join(lb.small.destroys) + "]")
    return " ".join(parts)


_ORDER = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]
_SHORT = {
    "AccessShareLock": "AS",
    "RowShareLock": "RS",
    "RowExclusiveLock": "RX",
    "ShareUpdateExclusiveLock": "SUX",
    "ShareLock": "S",
    "ShareRowExclusiveLock": "SRX",
    "ExclusiveLock": "X",
    "AccessExclusiveLock": "AX",
}


def _strongest(modes: Iterable[str]) -> str:
    return _SHORT[max(modes, key=_ORDER.index)]


# --------------------------------------------------------------------------------------
# Lint
# --------------------------------------------------------------------------------------


@dataclass
class Lint:
    failed: str | None
    findings: list[tuple[str, str]]  # (code, severity)

    @property
    def error(self) -> bool:
        return any(sev == "error" for _code, sev in self.findings)

    def show(self) -> str:
        if self.failed:
            return f"FAILED: {self.failed}"
        return ", ".join(f"{c}:{s}" for c, s in self.findings) or "(no findings)"


def write_files(cases: list[Case], where: Path) -> list[Path]:
    paths = []
    for i, case in enumerate(cases):
        p = where / f"{i:03d}_{case.id}.sql"
        p.write_text("".join(f"{s};\n" for s in (*case.prelude, case.sql)))
        paths.append(p)
    return paths


def _about_work(code: str) -> bool:
    """A finding about what the statement does (not lock_timeout, transactions or style)."""
    return code not in ("PW120", "PW121", "PW122", "PW130") and not code.startswith("PW3")


def lint_one(path: Path, url: str | None, stats: Path | None = None) -> Lint:
    cmd = [PGWARDEN, "lint", "--format", "json", path.name]
    if url:
        cmd += ["--database-url", url]
    if stats is not None:
        cmd += ["--stats", str(stats)]
    env = {
        k: v for k, v in os.environ.items() if k not in ("PGWARDEN_DATABASE_URL", "DATABASE_URL")
    }
    r = subprocess.run(
        cmd, cwd=path.parent, capture_output=True, text=True, check=False, env=env, timeout=120
    )
    if r.returncode not in (0, 1):
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        return Lint(f"exit {r.returncode}: {' | '.join(msg[-3:])}", [])
    try:
        data = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        err = " | ".join(r.stderr.strip().splitlines()[-3:])
        return Lint(f"bad JSON ({exc}), exit {r.returncode}: {r.stdout[:200]} stderr: {err}", [])
    if "Traceback" in r.stderr:
        return Lint(f"traceback on stderr: {r.stderr.strip().splitlines()[-1]}", [])
    return Lint(None, [(f["code"], f["severity"]) for f in data["findings"]])


def lint_all(paths: list[Path], url: str | None, stats: Path | None = None) -> list[Lint]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda p: lint_one(p, url, stats), paths))


# What "production size" means for the context run: every table of the large database
# grown this many times (400k rows -> 100M), every table busy.
CONTEXT_SCALE = 250
# The setting an extra SQL-alone lint runs with (the default is "warning").
STRICT = "error"
CONTEXT_WRITES_PER_S = 200.0
CONTEXT_READS_PER_S = 2000.0


def context_snapshot(url: str, where: Path, scale: int) -> Path:
    """`pgwarden stats dump` of the traced large database (its catalog: the schema as a
    live server has it), sizes multiplied by `scale` and every table busy. Index usage
    is left as the traced database has it (no query uses most of them): inventing
    usage would make every DROP INDEX drop an index in use, which the trace cannot
    see either way."""
    raw = where / "stats-raw.json"
    r = subprocess.run(
        [PGWARDEN, "stats", "dump", "--database-url", url, "-o", str(raw), "--sample-seconds", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        sys.exit(f"stats dump failed: {r.stderr.strip()}")
    data = json.loads(raw.read_text())
    for t in data["stats"]["tables"].values():
        for key in ("rows", "total_bytes", "table_bytes", "index_bytes"):
            t[key] = int(t[key]) * scale
        t["writes_per_s"] = CONTEXT_WRITES_PER_S
        t["reads_per_s"] = CONTEXT_READS_PER_S
    for i in data["stats"]["indexes"].values():
        i["bytes"] = int(i["bytes"]) * scale  # their use stays what the trace database saw
    out = where / "stats-production.json"
    out.write_text(json.dumps(data))
    return out


def scores(cases: list[Case], labels: list[Label], lints: list[Lint]) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of the error verdict against `dangerous`, scored cases only."""
    tp = fp = fn = tn = 0
    for lb, ln in zip(labels, lints, strict=True):
        if lb.error or ln.failed:
            continue
        if lb.dangerous:
            tp, fn = tp + ln.error, fn + (not ln.error)
        else:
            fp, tn = fp + ln.error, tn + (not ln.error)
    return tp, fp, fn, tn


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  -  "


def print_by_source(
    title: str, cases: list[Case], labels: list[Label], modes: dict[str, list[Lint]]
) -> None:
    """Recall and precision of each lint mode, for every source and in total."""
    sources = sorted({c.source for c in cases})
    print(f"\n{title}")
    head = f"  {'source':<18}{'cases':>6}{'label+':>7}"
    for mode in modes:
        head += f"  {mode + ' recall':>22}{'precision':>10}{'fp':>4}{'fn':>4}"
    print(head)
    for src in [*sources, "all"]:
        idx = [i for i, c in enumerate(cases) if src in ("all", c.source)]
        sub_cases = [cases[i] for i in idx]
        sub_labels = [labels[i] for i in idx]
        pos = sum(lb.dangerous and not lb.error for lb in sub_labels)
        line = f"  {src:<18}{len(idx):>6}{pos:>7}"
        for lints in modes.values():
            tp, fp, fn, _tn = scores(sub_cases, sub_labels, [lints[i] for i in idx])
            line += f"  {_ratio(tp, tp + fn):>22}{_ratio(tp, tp + fp):>10}{fp:>4}{fn:>4}"
        print(line)


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def confusion(
    title: str, cases: list[Case], labels: list[Label], lints: list[Lint], lock_only: bool = False
) -> list[int]:
    tp = fp = fn = tn = 0
    wrong: list[int] = []
    skipped = 0
    for i, (lb, ln) in enumerate(zip(labels, lints, strict=True)):
        if lb.error or ln.failed:
            skipped += 1
            continue
        if lock_only and lb.destroy and not lb.lock:
            skipped += 1
            continue
        truth = lb.lock if lock_only else lb.dangerous
        if truth and ln.error:
            tp += 1
        elif truth:
            fn += 1
            wrong.append(i)
        elif ln.error:
            fp += 1
            wrong.append(i)
        else:
            tn += 1
    recall = tp / (tp + fn) if tp + fn else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    print(f"\n{title}")
    print(f"  {'':18}{'label +':>10}{'label -':>10}")
    print(f"  {'pgwarden error':18}{tp:>10}{fp:>10}")
    print(f"  {'pgwarden no error':18}{fn:>10}{tn:>10}")
    print(
        f"  recall {recall:.3f}  precision {precision:.3f}  "
        f"({tp + fp + fn + tn} statements; {skipped} not scored: server error, pgwarden failure"
        f"{', destroy-only' if lock_only else ''})"
    )
    return wrong


def print_disagreements(
    title: str,
    idx: list[int],
    cases: list[Case],
    labels: list[Label],
    lints: list[Lint],
    brief: bool = False,
    also: list[Lint] | None = None,
) -> None:
    print(f"\n{title} ({len(idx)})")
    if brief:
        for i in idx:
            kind = "+".join(
                k for k, v in (("LOCK", labels[i].lock), ("DESTROY", labels[i].destroy)) if v
            )
            print(f"- [{cases[i].id}] label {kind}; pgwarden: {lints[i].show()}")
        return
    for i in idx:
        case, lb, ln = cases[i], labels[i], lints[i]
        parts = []
        if lb.lock:
            parts.append("LOCK")
        if lb.destroy:
            parts.append("DESTROY")
        truth = "+".join(parts) if parts else "safe"
        verdict = "error" if ln.error else "no error"
        pre = "; ".join(case.prelude)
        print(f"- [{case.id}] {(pre + '; ') if pre else ''}{case.sql}")
        print(f"    label {truth} / pgwarden {verdict}: {ln.show()}")
        if also is not None:
            print(f"    with --database-url: {also[i].show()}")
        blocking = f" blocking[{', '.join(lb.blocking)}]" if lb.blocking else ""
        print(f"    trace:{blocking} {evidence(lb)}")


def main() -> None:
    # ~1,800 `pgwarden lint` processes: compile once, not in each (PYTHONDONTWRITEBYTECODE)
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "src", quiet=1)
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--versions", default="15,newest", help="server majors ('newest' = newest)")
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=400_000)
    ap.add_argument("--only", default=None, help="regex on case ids (debugging)")
    ap.add_argument(
        "--db-lint",
        choices=("newest", "all", "none"),
        default="newest",
        help="servers whose large database is also given to lint --database-url",
    )
    ap.add_argument("--serial", action="store_true", help="trace one server after the other")
    ap.add_argument("--dump", default=None, help="write every trace to this JSON file")
    ap.add_argument("--verbose", action="store_true", help="print every statement's trace")
    ap.add_argument(
        "--no-url-lint",
        action="store_true",
        help="skip the --database-url lint (SQL alone and with context only)",
    )
    ap.add_argument(
        "--context-scale",
        type=int,
        default=CONTEXT_SCALE,
        help="with context: sizes of the large database multiplied by this (0: no context run)",
    )
    args = ap.parse_args()

    cases = [c for c in load_corpus() if not args.only or re.search(args.only, c.id)]
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        sys.exit("duplicate case ids")
    newest = max(i.major for i in find_installations())
    majors = [newest if v == "newest" else int(v) for v in args.versions.split(",")]
    majors = sorted(set(majors))
    sizes = {"small": args.small, "large": args.large}
    print(f"{len(cases)} statements; servers {majors}; sizes {sizes}", flush=True)

    t_start = time.perf_counter()
    servers: list[Server] = []
    try:
        for m in majors:
            servers.append(start_server(find_installation(m), sizes))
        with tempfile.TemporaryDirectory(prefix="verdict-") as tmp:
            paths = write_files(cases, Path(tmp))
            t0 = time.perf_counter()
            lint_default = lint_all(paths, None)
            # The same files under a pgwarden.toml keeping unknown type changes errors (the
            # verdict before bench/alter_type_study.json graded them).
            strict = Path(tmp) / "strict"
            strict.mkdir()
            (strict / "pgwarden.toml").write_text(f'unknown_type_change = "{STRICT}"\n')
            lint_strict = lint_all(write_files(cases, strict), None)
            lint_db: dict[int, list[Lint]] = {}
            lint_ctx: dict[int, list[Lint]] = {}
            for s in servers:
                if args.db_lint == "all" or (args.db_lint == "newest" and s is servers[-1]):
                    if not args.no_url_lint:
                        lint_db[s.major] = lint_all(paths, s.url_large)
                    if args.context_scale:
                        snap = context_snapshot(s.url_large, Path(tmp), args.context_scale)
                        lint_ctx[s.major] = lint_all(paths, None, snap)
            print(f"  lint: {time.perf_counter() - t0:.1f} s", flush=True)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1 if args.serial else len(servers)) as pool:
            traced = dict(
                zip(
                    [s.major for s in servers],
                    pool.map(lambda s: trace_server(s, cases, args.verbose), servers),
                    strict=True,
                )
            )
        print(
            f"  trace ({'one server after the other' if args.serial else 'servers in parallel'}):"
            f" {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        labels = {
            m: [label(ts, tl, servers[majors.index(m)].info["large"]) for ts, tl in pairs]
            for m, pairs in traced.items()
        }
        if args.dump:
            dump(Path(args.dump), cases, servers, traced)
    finally:
        for s in servers:
            s.cluster.stop()

    print()
    print(
        LABEL_DEFINITION.format(
            versions=", ".join(str(m) for m in majors), small=args.small, large=args.large
        )
    )
    print(
        "\npgwarden verdict: `pgwarden lint --format json FILE` (one statement per file, no stats,"
        " default settings, cwd = a temp dir) reports at least one finding of severity error."
    )

    primary = majors[-1]
    for m in majors:
        lbs = labels[m]
        n_lock = sum(lb.lock for lb in lbs)
        n_destroy = sum(lb.destroy for lb in lbs)
        n_both = sum(lb.lock and lb.destroy for lb in lbs)
        n_err = sum(bool(lb.error) for lb in lbs)
        print(
            f"\nPostgreSQL {m}: {len(lbs)} statements, LOCK {n_lock}, DESTROY {n_destroy} "
            f"(both {n_both}), safe {len(lbs) - n_lock - n_destroy + n_both - n_err}, "
            f"server error {n_err}"
        )

    wrong_primary: list[int] = []
    for m in majors:
        w = confusion(
            f"== lint (no stats, default settings) vs PostgreSQL {m} label LOCK or DESTROY",
            cases,
            labels[m],
            lint_default,
        )
        confusion(
            f"== lint (no stats, default settings) vs PostgreSQL {m} label LOCK only "
            "(destroy-only statements not scored)",
            cases,
            labels[m],
            lint_default,
            lock_only=True,
        )
        if m == primary:
            wrong_primary = w
    print_disagreements(
        f"\n== Disagreements, lint (no stats) vs PostgreSQL {primary} label",
        wrong_primary,
        cases,
        labels[primary],
        lint_default,
        also=lint_db.get(primary),
    )
    for m in majors:
        if m == primary:
            continue
        diff = [
            i
            for i in range(len(cases))
            if (labels[m][i].dangerous, bool(labels[m][i].error))
            != (labels[primary][i].dangerous, bool(labels[primary][i].error))
        ]
        print_disagreements(
            f"\n== Label differs between PostgreSQL {m} and {primary} (shown: PostgreSQL {m})",
            diff,
            cases,
            labels[m],
            lint_default,
        )

    for m, lints in lint_db.items():
        lbs = labels[m]
        w = confusion(
            f"== lint --database-url (PostgreSQL {m}, {args.large:,}-row database) vs its label",
            cases,
            lbs,
            lints,
        )
        demoted = [i for i in range(len(cases)) if lint_default[i].error and not lints[i].error]
        promoted = [i for i in range(len(cases)) if lints[i].error and not lint_default[i].error]
        print(
            f"\n== Verdict changes with --database-url (PostgreSQL {m}): error -> no error "
            f"{len(demoted)} (label + {sum(lbs[i].dangerous for i in demoted)}, label - "
            f"{sum(not lbs[i].dangerous and not lbs[i].error for i in demoted)}, "
            f"server error {sum(bool(lbs[i].error) for i in demoted)}); "
            f"no error -> error {len(promoted)}"
        )
        codes: dict[str, list[str]] = {}
        for i in demoted:
            key = ", ".join(sorted({c for c, _ in lint_default[i].findings if c != "PW120"}))
            codes.setdefault(key or "-", []).append(
                cases[i].id + ("" if lbs[i].dangerous else " (label safe)")
            )
        print("  error -> no error, by the no-stats codes (PW120 left out):")
        for key, names in sorted(codes.items()):
            print(f"    {key}: {', '.join(names)}")
        print_disagreements("  no error -> error", promoted, cases, lbs, lints)
        print_disagreements(
            f"\n== Still an error with --database-url (real catalog, PostgreSQL {m}) but the label"
            " says safe",
            [i for i in w if lints[i].error],
            cases,
            lbs,
            lints,
        )
        unseen = [
            i
            for i in range(len(cases))
            if lbs[i].dangerous
            and not lints[i].failed
            and not any(_about_work(c) for c, _ in lints[i].findings)
        ]
        print_disagreements(
            f"\n== Label + but --database-url (real catalog, PostgreSQL {m}) reports nothing about"
            " the work (only lock_timeout / transaction / style findings): missed even for a"
            " huge table",
            unseen,
            cases,
            lbs,
            lints,
        )
        print_disagreements(
            f"\n== Label + and no error with --database-url (PostgreSQL {m}) although the "
            "no-stats lint said error",
            [i for i in w if not lints[i].error and lint_default[i].error and lbs[i].dangerous],
            cases,
            lbs,
            lints,
            brief=True,
        )

    for m, lints in lint_ctx.items():
        lbs = labels[m]
        w = confusion(
            f"== lint with context (--stats: the traced schema's catalog, sizes x"
            f"{args.context_scale}, every table busy; PostgreSQL {m}) vs its label",
            cases,
            lbs,
            lints,
        )
        print_disagreements(
            f"\n== Disagreements with context (PostgreSQL {m})", w, cases, lbs, lints
        )
    confusion(
        f"== lint (no stats, unknown_type_change = {STRICT!r}) vs PostgreSQL {primary} label "
        "LOCK or DESTROY",
        cases,
        labels[primary],
        lint_strict,
    )
    changed = [i for i in range(len(cases)) if lint_strict[i].error != lint_default[i].error]
    print_disagreements(
        f"\n== Verdict differs between the default and unknown_type_change = {STRICT!r} "
        f"(PostgreSQL {primary} label)",
        changed,
        cases,
        labels[primary],
        lint_default,
        brief=True,
    )
    for m in majors:
        modes = {"sql-alone": lint_default, f"type={STRICT}": lint_strict}
        if m in lint_ctx:
            modes["context"] = lint_ctx[m]
        print_by_source(
            f"== By source, PostgreSQL {m} label LOCK or DESTROY", cases, labels[m], modes
        )

    failures = [
        (cases[i], f"{mode}: {ln.failed}")
        for mode, lints in [("no stats", lint_default)]
        + [(f"--database-url pg{m}", v) for m, v in lint_db.items()]
        + [(f"context pg{m}", v) for m, v in lint_ctx.items()]
        for i, ln in enumerate(lints)
        if ln.failed
    ]
    print(f"\n== pgwarden failures (crash, parse error, internal error): {len(failures)}")
    for case, why in failures:
        print(f"- [{case.id}] {case.sql}\n    {why}")
    errors = [(i, lb.error) for i, lb in enumerate(labels[primary]) if lb.error]
    print(f"\n== Statements the server rejected (PostgreSQL {primary}; not scored): {len(errors)}")
    for i, why in errors:
        print(f"- [{cases[i].id}] {cases[i].sql}\n    {why}; pgwarden: {lint_default[i].show()}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
