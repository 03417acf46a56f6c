"""Where a rehearsal runs: an embedded throwaway cluster, or a scratch database on staging.

A staging DSN is refused when it looks like production: its database or host
name says `prod`/`production`, its server's `cluster_name` or custom setting
`pgwarden.environment` does, or its `pgwarden.target` stamp names a protected
environment. On an accepted server the rehearsal runs in a scratch database
(`pgwarden_rehearse_<hex>`) that is dropped afterwards; the user's own
databases are only read (schema dump).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import errors as pge
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.errors import DatabaseError, Refused
from pgwarden.pg.binaries import Installation, find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.pg.connect import connect, describe_dsn
from pgwarden.pg.journal_access import check_journal_readable
from pgwarden.settings import Environment

__all__ = ["Target", "check_not_production", "open_target"]

_PROD = re.compile(r"(^|[^a-z])(prod|production|prd|live)([^a-z]|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Target:
    """A database to rehearse in; `admin_dsn` reaches the same server."""

    dsn: str
    admin_dsn: str
    description: str
    server_version: str
    major: int
    installation: Installation | None  # of the embedded cluster, when embedded
    cluster: Cluster | None


def _stamp_environment(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    check_journal_readable(conn)  # an unreadable stamp may be production's: say so
    row = conn.execute(
        "SELECT to_regclass('pgwarden.target') IS NOT NULL",
    ).fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute(sql.SQL("SELECT environment FROM pgwarden.target LIMIT 1")).fetchone()
    return str(found[0]) if found else None


def check_not_production(
    dsn: str,
    conn: psycopg.Connection[tuple[object, ...]],
    environments: Mapping[str, Environment],
) -> None:
    """Raise `Refused` when `dsn`/`conn` is marked as production or protected."""
    params = conninfo_to_dict(dsn)
    row = conn.execute(
        "SELECT current_database(), current_setting('cluster_name', true), "
        "current_setting('pgwarden.environment', true)"
    ).fetchone()
    assert row is not None
    marks = {
        "database name": str(row[0] or ""),
        "host": str(params.get("host") or ""),
        "cluster_name": str(row[1] or ""),
        "pgwarden.environment": str(row[2] or ""),
    }
    for what, value in marks.items():
        if value and _PROD.search(value):
            raise Refused(
                f"refusing to rehearse on {describe_dsn(dsn)}: its {what} {value!r} marks it "
                "as production; a rehearsal runs the migration and loads synthetic data",
                hint="rehearse on the embedded cluster (omit --database-url) or on a staging "
                "server; use --schema-from to copy production's schema read-only",
            )
    stamped = _stamp_environment(conn)
    if stamped is not None:
        from pgwarden.pg.stamp import stamp_protection
        from pgwarden.settings import is_protected

        recorded = stamp_protection(conn)  # apply's rule: the stamp travels
        if is_protected(stamped, environments, recorded) or _PROD.search(stamped):
            raise Refused(
                f"refusing to rehearse on {describe_dsn(dsn)}: it is stamped as protected "
                f"environment {stamped!r}",
                hint="rehearse on the embedded cluster or on an unprotected staging server",
            )


def _version(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, int]:
    row = conn.execute("SHOW server_version").fetchone()
    num = conn.info.server_version
    return (str(row[0]).split()[0] if row else str(num)), num // 10000


@contextlib.contextmanager
def open_target(
    database_url: str | None,
    *,
    environments: Mapping[str, Environment] | None = None,
    major: int | None = None,
) -> Iterator[Target]:
    """Yield a fresh database to rehearse in; remove it (and any cluster) afterwards."""
    if database_url is None:
        inst = find_installation(major)
        with Cluster.start(inst) as cluster:
            dsn = cluster.create_database("rehearsal")
            yield Target(
                dsn,
                cluster.dsn(),
                f"embedded PostgreSQL {inst.version} (throwaway)",
                inst.version,
                inst.major,
                inst,
                cluster,
            )
        return
    with connect(database_url) as conn:
        check_not_production(database_url, conn, environments or {})
        version, server_major = _version(conn)
        name = f"pgwarden_rehearse_{secrets.token_hex(4)}"
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except pge.InsufficientPrivilege:
            raise DatabaseError(
                f"cannot create a scratch database on {describe_dsn(database_url)}: "
                "permission denied",
                hint="grant CREATEDB to the rehearsal role, or omit --database-url to "
                "rehearse on an embedded cluster",
            ) from None
    params = conninfo_to_dict(database_url)
    params["dbname"] = name
    scratch = make_conninfo(**params)  # type: ignore[arg-type]
    try:
        yield Target(
            scratch,
            database_url,
            f"scratch database {name} on {describe_dsn(database_url)}",
            version,
            server_major,
            None,
            None,
        )
    finally:
        with connect(database_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
