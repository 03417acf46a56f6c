"""Logical replication between OLD and NEW: names, publication, subscription, progress, lag.

One upgrade owns one publication, one subscription and one slot per direction,
all named after the upgrade id (`pgwarden_up_<id>` forward, `..._rev` for the
reverse replication NEW -> OLD), so cancel and rollback find exactly what the
run created and nothing else. Only ordinary tables of user schemas are
published (not extension members, not pgwarden's own upgrade record).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.errors import ConnectionFailed
from pgwarden.pg.connect import connect

__all__ = [
    "CopyProgress",
    "Lag",
    "Names",
    "copy_progress",
    "create_publication",
    "create_subscription",
    "drop_publication",
    "drop_slot",
    "drop_subscription",
    "lag",
    "published_tables",
    "replay_lsn",
    "schema_fingerprint",
]

Conn = psycopg.Connection[tuple[object, ...]]
STATE_SCHEMA = "pgwarden_upgrade"

# Ordinary tables (and partitions) of user schemas, not members of an extension, with a
# row estimate: the planner's (reltuples, as of the last ANALYZE) or the live rows the
# cumulative statistics count (rows loaded since), whichever is larger.
_TABLES = """
SELECT n.nspname, c.relname, c.relpersistence,
       (CASE WHEN c.reltuples >= 0 THEN greatest(c.reltuples, coalesce(s.n_live_tup, 0))
             ELSE coalesce(s.n_live_tup, 0) END)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', %(state)s)
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Names:
    """What one upgrade creates, by name."""

    upgrade_id: str

    @property
    def forward(self) -> str:
        """Publication (OLD), subscription (NEW) and slot (OLD) of OLD -> NEW."""
        return f"pgwarden_up_{self.upgrade_id}"

    @property
    def reverse(self) -> str:
        """Publication (NEW), subscription (OLD) and slot (NEW) of NEW -> OLD."""
        return f"pgwarden_up_{self.upgrade_id}_rev"


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    name: str
    unlogged: bool
    estimate: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)


# A row written here on the sending side, once seen on the receiving side, proves that
# every transaction committed before it was applied (replication keeps commit order).
MARKER = Table(STATE_SCHEMA, "marker", False, 0)


def ensure_marker(conn: Conn) -> None:
    """The marker table (published with the user tables) on either side."""
    conn.execute(
        sql.SQL(
            "CREATE SCHEMA IF NOT EXISTS {s}; "
            "CREATE TABLE IF NOT EXISTS {s}.marker (id text PRIMARY KEY, at timestamptz "
            "NOT NULL DEFAULT now())"
        ).format(s=sql.Identifier(STATE_SCHEMA))
    )


def published_tables(conn: Conn) -> list[Table]:
    """The tables an upgrade replicates, with their row estimate (see _TABLES)."""
    rows = conn.execute(_TABLES, {"state": STATE_SCHEMA}).fetchall()
    return [Table(str(s), str(n), p == "u", int(str(e))) for s, n, p, e in rows]


def schema_fingerprint(conn: Conn) -> str:
    """A digest of the user tables' columns, indexes and constraints (DDL changes it)."""
    row = conn.execute(
        """
        WITH t AS (SELECT c.oid, format('%%I.%%I', n.nspname, c.relname) AS name
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.relkind IN ('r', 'p')
                     AND n.nspname NOT IN ('pg_catalog', 'information_schema', %(state)s)
                     AND n.nspname NOT LIKE 'pg\\_toast%%'
                     AND n.nspname NOT LIKE 'pg\\_temp%%')
        SELECT md5(coalesce(string_agg(line, E'\\n' ORDER BY line), ''))
        FROM (
          SELECT format('col %%s %%s %%s %%s', t.name, a.attname,
                        format_type(a.atttypid, a.atttypmod), a.attnotnull) AS line
          FROM t JOIN pg_attribute a ON a.attrelid = t.oid
          WHERE a.attnum > 0 AND NOT a.attisdropped
          UNION ALL
          SELECT format('idx %%s %%s', t.name, pg_get_indexdef(i.indexrelid))
          FROM t JOIN pg_index i ON i.indrelid = t.oid
          UNION ALL
          SELECT format('con %%s %%s %%s', t.name, co.conname, pg_get_constraintdef(co.oid))
          FROM t JOIN pg_constraint co ON co.conrelid = t.oid
          UNION ALL
          SELECT format('tab %%s', t.name) FROM t
        ) lines
        """,
        {"state": STATE_SCHEMA},
    ).fetchone()
    assert row is not None
    return str(row[0])


def create_publication(conn: Conn, name: str, tables: list[Table]) -> None:
    """CREATE PUBLICATION `name` FOR TABLE ... (unless it exists)."""
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return
    ensure_marker(conn)
    conn.execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(name), sql.SQL(", ").join(t.ident for t in [*tables, MARKER])
        )
    )


def drop_publication(conn: Conn, name: str) -> bool:
    """DROP PUBLICATION IF EXISTS; whether one was there."""
    found = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))
    return found is not None


def create_subscription(conn: Conn, name: str, conninfo: str, *, copy_data: bool) -> None:
    """CREATE SUBSCRIPTION `name` to the publication of the same name (unless it exists).

    The slot has the subscription's name; `copy_data=False` starts from the slot's
    creation point (the reverse replication, and a forward one restored after a
    switchover rolled back while OLD took no writes).
    """
    if conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone():
        return
    conn.execute(
        sql.SQL(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} "
            "WITH (copy_data = {}, slot_name = {}, create_slot = true)"
        ).format(
            sql.Identifier(name),
            sql.Literal(conninfo),
            sql.Identifier(name),
            sql.SQL("true" if copy_data else "false"),
            sql.Literal(name),
        )
    )


def drop_subscription(conn: Conn, name: str) -> bool:
    """DROP SUBSCRIPTION (and its slot on the other side); whether one was there.

    When the other side cannot be reached the subscription is detached from its slot
    first (slot_name = NONE), so the drop never hangs on it; `drop_slot` on the other
    side removes the slot then.
    """
    found = conn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s", (name,)).fetchone()
    if found is None:
        return False
    ident = sql.Identifier(name)
    try:
        conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
    except psycopg.OperationalError:
        if conn.closed:
            raise
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
        conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
    return True


def drop_slot(conn: Conn, name: str, *, wait_s: float = 10.0) -> bool:
    """Drop the replication slot `name` if it is still there, ending the walsender that
    uses it (a subscriber being stopped may hold it for a moment); whether one was dropped."""
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (name,)
        ).fetchone()
        if row is None:
            return False
        if row[0] is not None:
            conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
            return True
        except (psycopg.errors.ObjectInUse, psycopg.errors.UndefinedObject):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class CopyProgress:
    tables_ready: int
    tables_total: int
    rows_done: int
    rows_total: int
    copying: tuple[str, ...]

    @property
    def done(self) -> bool:
        return self.tables_total == self.tables_ready

    def describe(self) -> str:
        """'1/3 tables ready, about 120 of 400 rows', or what is true when nothing counts."""
        if self.tables_total == 0:
            return "no tables to copy"
        tables = f"{self.tables_ready}/{self.tables_total} tables ready"
        if self.rows_total == 0:
            return f"{tables}, no rows to copy (by OLD's statistics)"
        return f"{tables}, about {self.rows_done:,} of {self.rows_total:,} rows"


def copy_progress(new: Conn, name: str, estimates: dict[str, int]) -> CopyProgress:
    """The initial copy of subscription `name` on NEW: pg_subscription_rel's states
    ('r' ready) and the rows pg_stat_progress_copy counted for tables being copied."""
    rows = new.execute(
        """
        SELECT format('%%s.%%s', n.nspname, c.relname), sr.srsubstate, pc.tuples_processed
        FROM pg_subscription s
        JOIN pg_subscription_rel sr ON sr.srsubid = s.oid
        JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_stat_progress_copy pc ON pc.relid = sr.srrelid
        WHERE s.subname = %s
        """,
        (name,),
    ).fetchall()
    ready = 0
    done = 0
    unestimated = 0  # rows copied of tables OLD estimated as empty: counted in the total
    copying: list[str] = []
    rows = [r for r in rows if str(r[0]) in estimates]  # not pgwarden's marker
    for table, state, processed in rows:
        estimate = estimates.get(str(table), 0)
        if state in ("r", "s"):
            ready += 1 if state == "r" else 0
            done += estimate
        elif processed is not None:
            copying.append(str(table))
            copied = int(str(processed))
            done += min(copied, estimate) if estimate else copied
            unestimated += 0 if estimate else copied
    total = sum(estimates.values()) + unestimated
    return CopyProgress(ready, len(rows), min(done, total), total, tuple(copying))


# A lag in seconds is the server's own measurement (pg_stat_replication.replay_lag), and
# only as of the receiver's last reply: a receiver stuck applying a transaction (a lock,
# a slow trigger) sends no reply and the figure stays what it was. Older than this, the
# figure is not shown; a healthy receiver replies as soon as it has applied something.
FRESH_REPLY_S = 2.0


@dataclass(frozen=True, slots=True)
class Lag:
    """How far a slot's receiver trails the sender: bytes always; seconds when known."""

    bytes: int
    seconds: float | None  # None: not known now (`unknown` says why)
    unknown: str | None = None  # why the seconds are not known

    def describe(self) -> str:
        """'N bytes, S s', or 'N bytes (seconds unknown: why)'."""
        if self.seconds is not None:
            return f"{self.bytes:,} bytes, {_secs(self.seconds)}"
        return f"{self.bytes:,} bytes (seconds unknown: {self.unknown or 'not measured'})"


def _secs(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def lag(sender: Conn, name: str) -> Lag | None:
    """How far the slot `name` trails the sender's WAL (None: no such slot).

    Bytes: the sender's current WAL position minus the slot's confirmed_flush_lsn.
    Seconds: 0 when nothing is unconfirmed; else the server's replay_lag, only while
    the receiver's last reply is fresh (`FRESH_REPLY_S`); otherwise unknown, with why.
    """
    row = sender.execute(
        """
        SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
               extract(epoch FROM r.replay_lag)::float8,
               r.pid IS NOT NULL,
               extract(epoch FROM clock_timestamp() - r.reply_time)::float8
        FROM pg_replication_slots s
        LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
        WHERE s.slot_name = %s
        """,
        (name,),
    ).fetchone()
    if row is None:
        return None
    behind = max(int(str(row[0] or 0)), 0)
    replay_lag = None if row[1] is None else float(str(row[1]))
    connected = bool(row[2])
    reply_age = None if row[3] is None else float(str(row[3]))
    if behind == 0:
        return Lag(0, 0.0)
    if not connected:
        return Lag(behind, None, "no receiver is connected to the slot")
    if reply_age is None or reply_age > FRESH_REPLY_S:
        age = "" if reply_age is None else f" for {reply_age:.1f} s"
        return Lag(behind, None, f"no reply from the receiver{age} (idle, or stuck applying)")
    if replay_lag is None:
        return Lag(behind, None, "not measured by the server yet")
    return Lag(behind, replay_lag)


def replay_lsn(sender: Conn, name: str) -> str | None:
    """The LSN the receiver of slot `name` reported as applied (pg_stat_replication)."""
    row = sender.execute(
        """
        SELECT greatest(r.replay_lsn, s.confirmed_flush_lsn)::text
        FROM pg_replication_slots s
        LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
        WHERE s.slot_name = %s
        """,
        (name,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


@dataclass(frozen=True, slots=True)
class Sides:
    """How pgwarden reaches OLD and NEW, and how each server reaches the other.

    `source_conninfo` is what NEW's subscription uses to reach OLD (default: OLD's
    DSN), `target_conninfo` what OLD's reverse subscription uses to reach NEW. They
    are stored by PostgreSQL in pg_subscription (readable by superusers only) and
    never in pgwarden's journal.
    """

    old_dsn: str
    new_dsn: str
    source_conninfo: str
    target_conninfo: str

    def old(self, *, autocommit: bool = True) -> Conn:
        """A connection to OLD that may write even while OLD is read-only."""
        return _writable(_connect(self.old_dsn, "OLD (--database-url)"), autocommit)

    def new(self, *, autocommit: bool = True) -> Conn:
        """A connection to NEW that may write even while NEW is read-only."""
        return _writable(_connect(self.new_dsn, "NEW (--target-url)"), autocommit)


def _connect(dsn: str, side: str) -> Conn:
    """`connect`, its failure naming the side (OLD or NEW) it was for."""
    try:
        return connect(dsn, application_name="pgwarden-upgrade")
    except ConnectionFailed as exc:
        raise ConnectionFailed(
            f"{side}: {exc.message}", hint=exc.hint, sqlstate=exc.sqlstate
        ) from None


def _writable(conn: Conn, autocommit: bool) -> Conn:
    conn.execute("SET default_transaction_read_only = off")
    conn.autocommit = autocommit
    return conn


def set_read_only(conn: Conn, read_only: bool) -> None:
    """ALTER DATABASE (the connection's) SET/RESET default_transaction_read_only."""
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    db = sql.Identifier(str(row[0]))
    if read_only:
        conn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(db))
    else:
        conn.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(db))


def is_read_only(conn: Conn) -> bool:
    """Whether the database carries default_transaction_read_only = on (for new sessions)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d "
        "ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0 "
        "AND 'default_transaction_read_only=on' = ANY(s.setconfig))"
    ).fetchone()
    return bool(row and row[0])


def terminate_clients(conn: Conn, keep: tuple[int, ...] = (), *, writers_only: bool = False) -> int:
    """End the client sessions of the connection's database (not `keep`, not pgwarden's
    own upgrade sessions); with `writers_only`, only those holding a transaction id."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid() AND pid <> ALL(%s) "
        "AND application_name <> 'pgwarden-upgrade' "
        "AND (NOT %s OR backend_xid IS NOT NULL)",
        (list(keep), writers_only),
    ).fetchall()
    return len(rows)


def write_count(conn: Conn) -> int:
    """Rows inserted, updated or deleted in the user tables so far (cumulative statistics)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint "
        "FROM pg_stat_user_tables WHERE schemaname <> %s",
        (STATE_SCHEMA,),
    ).fetchone()
    return int(str(row[0])) if row else 0
