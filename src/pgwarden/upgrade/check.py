"""`upgrade check`: what would break a major-version upgrade, read from the live catalog.

Every check returns `Issue`s, typed and self-explaining: which upgrade route
they block (`pg_upgrade`, `logical`, or both), the objects involved, and the
fix. The checks only read (the session is read-only); the pg_upgrade families
live in `check_types.py`, the extension and library families in
`check_extensions.py`, the collation family in `check_collations.py`. The
logical-replication readiness checks are here, so that `upgrade run` calls
the same functions for its guardrails:

    from pgwarden.upgrade.check import logical_readiness
    issues = logical_readiness(conn)          # list[Issue]
    blockers = [i for i in issues if i.blocks("logical")]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import psycopg

__all__ = [
    "Conn",
    "Issue",
    "Route",
    "Severity",
    "logical_database_readiness",
    "logical_readiness",
    "new_issue",
    "prepared_transactions",
    "server_major",
]

Conn = psycopg.Connection[tuple[object, ...]]
Route = Literal["pg_upgrade", "logical"]
BOTH: tuple[Route, ...] = ("pg_upgrade", "logical")
# Temporary slots and WAL senders the initial copy uses besides the subscription's own:
# one per table synchronisation worker (max_sync_workers_per_subscription, default 2).
_SYNC_WORKERS = 2
_LIST = 20  # objects named per issue; the rest are counted


class Severity(StrEnum):
    """How bad an issue is for the route it concerns."""

    BLOCKER = "blocker"  # the upgrade fails or loses data
    WARNING = "warning"  # works, but needs an action before or after
    NOTE = "note"  # worth knowing


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing that breaks or complicates an upgrade route."""

    code: str
    severity: Severity
    routes: tuple[Route, ...]
    message: str
    hint: str
    objects: tuple[str, ...] = ()
    more: int = 0  # objects beyond those listed
    database: str | None = None  # set when several databases are checked

    def blocks(self, route: Route) -> bool:
        """Whether this issue stops `route`."""
        return self.severity is Severity.BLOCKER and route in self.routes

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "routes": list(self.routes),
            "message": self.message,
            "hint": self.hint,
            "objects": list(self.objects),
            "more_objects": self.more,
            "database": self.database,
        }


def rows(conn: Conn, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """All rows of a catalog query."""
    return conn.execute(query.encode(), params or None).fetchall()


def value(conn: Conn, query: str, params: tuple[object, ...] = ()) -> object:
    """The first column of the first row."""
    row = conn.execute(query.encode(), params or None).fetchone()
    return None if row is None else row[0]


def server_major(conn: Conn) -> int:
    """The server's major version (15, 16, ...)."""
    return int(str(value(conn, "SHOW server_version_num"))) // 10000


def listed(names: list[str]) -> tuple[tuple[str, ...], int]:
    """The first names to show and how many more there are."""
    return tuple(names[:_LIST]), max(0, len(names) - _LIST)


def new_issue(
    code: str,
    severity: Severity,
    routes: tuple[Route, ...],
    message: str,
    hint: str,
    names: list[str] | None = None,
) -> Issue:
    shown, more = listed(names or [])
    return Issue(code, severity, routes, message, hint, shown, more)


# -- prepared transactions (both routes) ---------------------------------------------------


def prepared_transactions(conn: Conn) -> list[Issue]:
    """Prepared transactions: pg_upgrade refuses them; a logical slot waits for them."""
    found = rows(
        conn,
        "SELECT gid, database, owner, prepared FROM pg_prepared_xacts ORDER BY prepared",
    )
    if not found:
        return []
    names = [f"{gid} (database {db}, owner {owner}, prepared {at})" for gid, db, owner, at in found]
    return [
        new_issue(
            "prepared-transactions",
            Severity.BLOCKER,
            BOTH,
            f"{len(found)} prepared transaction(s) are open: pg_upgrade refuses to run, and "
            "creating a logical replication slot waits until they end",
            "COMMIT PREPARED or ROLLBACK PREPARED each of them (pg_prepared_xacts), "
            "and find what leaves them behind",
            names,
        )
    ]


# -- logical replication readiness -----------------------------------------------------------

_USER_TABLES = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relreplident, c.relpersistence,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
ORDER BY 1
"""


def _tables(conn: Conn) -> list[Issue]:
    no_identity: list[str] = []
    full: list[str] = []
    unlogged: list[str] = []
    for qualified, replident, persistence, has_pk, _kind in rows(conn, _USER_TABLES):
        qname = str(qualified)
        if persistence == "u":
            unlogged.append(qname)
            continue
        if replident == "n" or (replident == "d" and not has_pk):
            no_identity.append(qname)
        elif replident == "f":
            full.append(qname)
    out: list[Issue] = []
    if no_identity:
        out.append(
            new_issue(
                "no-replica-identity",
                Severity.BLOCKER,
                ("logical",),
                f"{len(no_identity)} table(s) have no primary key and no replica identity: "
                "once published, every UPDATE and DELETE on them fails on the source",
                "add a primary key (or a unique index on NOT NULL columns and ALTER TABLE ... "
                "REPLICA IDENTITY USING INDEX); REPLICA IDENTITY FULL works but makes the "
                "subscriber scan the table for each changed row",
                no_identity,
            )
        )
    if full:
        out.append(
            new_issue(
                "replica-identity-full",
                Severity.WARNING,
                ("logical",),
                f"{len(full)} table(s) use REPLICA IDENTITY FULL: each UPDATE or DELETE makes "
                "the subscriber look the row up by every column (a scan without a matching "
                "index), so catch-up can fall behind",
                "give them a primary key and ALTER TABLE ... REPLICA IDENTITY DEFAULT",
                full,
            )
        )
    if unlogged:
        out.append(
            new_issue(
                "unlogged-tables",
                Severity.BLOCKER,
                ("logical",),
                f"{len(unlogged)} UNLOGGED table(s): logical replication does not carry them, "
                "their rows would be missing on the new server",
                "ALTER TABLE ... SET LOGGED before the upgrade, or accept starting them empty "
                "(pg_upgrade keeps them)",
                unlogged,
            )
        )
    return out


def _large_objects(conn: Conn) -> list[Issue]:
    count = int(str(value(conn, "SELECT count(*) FROM pg_largeobject_metadata")))
    if not count:
        return []
    return [
        new_issue(
            "large-objects",
            Severity.BLOCKER,
            ("logical",),
            f"{count} large object(s): logical replication does not carry pg_largeobject",
            "move them into bytea columns, or upgrade with pg_upgrade (which keeps them)",
        )
    ]


def _relations(conn: Conn, relkind: str) -> list[str]:
    """The quoted schema.name of each user relation of `relkind` ('S', 'm'...), sorted."""
    return [
        str(r[0])
        for r in rows(
            conn,
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = %s "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            (relkind,),
        )
    ]


def _sequences(conn: Conn) -> list[Issue]:
    names = _relations(conn, "S")
    if not names:
        return []
    return [
        new_issue(
            "sequences",
            Severity.NOTE,
            ("logical",),
            f"{len(names)} sequence(s): logical replication does not carry their values",
            "`pgwarden upgrade run` sets them on the new server at the switchover, while "
            "writes are paused; any other route must copy them (setval) before writes move",
            names,
        )
    ]


def _materialized_views(conn: Conn) -> list[Issue]:
    names = _relations(conn, "m")
    if not names:
        return []
    return [
        new_issue(
            "materialized-views",
            Severity.WARNING,
            ("logical",),
            f"{len(names)} materialized view(s): not replicated, they start empty "
            "on the new server",
            "REFRESH MATERIALIZED VIEW each of them on the new server before the switchover",
            names,
        )
    ]


def _server_settings(conn: Conn) -> list[Issue]:
    out: list[Issue] = []
    level = str(value(conn, "SHOW wal_level"))
    if level != "logical":
        out.append(
            new_issue(
                "wal-level",
                Severity.BLOCKER,
                ("logical",),
                f"wal_level is {level}; publishing changes needs wal_level = logical",
                "ALTER SYSTEM SET wal_level = logical and restart the server "
                "(on a managed service: the parameter group's rds.logical_replication or "
                "equivalent); plan the restart in a quiet window",
            )
        )
    need = 1 + _SYNC_WORKERS
    free_slots = int(
        str(
            value(
                conn,
                "SELECT current_setting('max_replication_slots')::int "
                "- (SELECT count(*) FROM pg_replication_slots)",
            )
        )
    )
    if free_slots < need:
        out.append(
            new_issue(
                "replication-slots",
                Severity.BLOCKER,
                ("logical",),
                f"{free_slots} free replication slot(s); the upgrade needs {need} "
                f"(its own slot and one per table synchronisation worker)",
                "raise max_replication_slots (restart) or drop unused slots "
                "(pg_replication_slots, active = false)",
            )
        )
    free_senders = int(
        str(
            value(
                conn,
                "SELECT current_setting('max_wal_senders')::int "
                "- (SELECT count(*) FROM pg_stat_replication)",
            )
        )
    )
    if free_senders < need:
        out.append(
            new_issue(
                "wal-senders",
                Severity.BLOCKER,
                ("logical",),
                f"{free_senders} free WAL sender(s); the upgrade needs {need}",
                "raise max_wal_senders (restart)",
            )
        )
    inactive = [
        str(r[0])
        for r in rows(
            conn,
            "SELECT slot_name FROM pg_replication_slots WHERE NOT active ORDER BY 1",
        )
    ]
    if inactive:
        out.append(
            new_issue(
                "inactive-slots",
                Severity.WARNING,
                BOTH,
                f"{len(inactive)} inactive replication slot(s) hold WAL back; pg_upgrade "
                "before 17 does not carry slots over, and each takes a slot the upgrade may need",
                "drop the ones nothing uses: SELECT pg_drop_replication_slot(name)",
                inactive,
            )
        )
    can_replicate = bool(
        value(
            conn,
            "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user",
        )
    )
    if not can_replicate:
        out.append(
            new_issue(
                "replication-role",
                Severity.WARNING,
                ("logical",),
                "the role pgwarden connects as has neither SUPERUSER nor REPLICATION: it "
                "cannot create the publication for all tables and the replication slot",
                "run `upgrade run` as a superuser (or the managed service's replication role)",
            )
        )
    return out


def logical_readiness(conn: Conn) -> list[Issue]:
    """Everything that stops or complicates an upgrade through logical replication.

    Reads the catalog of the database `conn` is connected to (and the server's
    settings); changes nothing.
    """
    return [*_server_settings(conn), *logical_database_readiness(conn)]


def logical_database_readiness(conn: Conn) -> list[Issue]:
    """The per-database part of `logical_readiness` (tables, large objects, ...)."""
    return [
        *_tables(conn),
        *_large_objects(conn),
        *_materialized_views(conn),
        *_sequences(conn),
    ]
