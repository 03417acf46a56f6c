"""Collations: a sort order that changes under an index corrupts it silently.

A B-tree on text is ordered by its collation's library (glibc or ICU). When the
library's version changes (an OS upgrade, another ICU, other binaries),
pg_upgrade keeps the old index files, and lookups miss rows that are there.
The checks: collations whose recorded version already differs from what the
source server's library reports (the OS changed underneath it), ICU
collations in use when the target binaries have no ICU at all, and, on a
running target cluster, each (provider, locale) used by an index compared
between the source and the target's libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.upgrade.check import BOTH, Conn, Issue, Severity, new_issue, rows, server_major
from pgwarden.upgrade.check_extensions import TargetFiles

__all__ = ["UsedCollation", "collation_issues", "target_version_changes", "used_collations"]

_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}


@dataclass(frozen=True, slots=True)
class UsedCollation:
    """A collation that text indexes of the source depend on."""

    name: str
    provider: str  # libc, icu, builtin
    locale: str
    version: str | None  # what the source server's library reports
    indexes: tuple[str, ...]


def _locale_columns(major: int) -> tuple[str, str]:
    """(collation locale expression, database locale expression) for this server major."""
    if major >= 17:
        return (
            "COALESCE(c.colllocale, c.collcollate)",
            "COALESCE(d.datlocale, d.datcollate)",
        )
    if major >= 15:
        return (
            "COALESCE(c.colliculocale, c.collcollate)",
            "COALESCE(d.daticulocale, d.datcollate)",
        )
    return ("c.collcollate", "d.datcollate")


def used_collations(conn: Conn) -> list[UsedCollation]:
    """Collations (other than C/POSIX) that user indexes depend on, with their versions."""
    major = server_major(conn)
    coll_locale, db_locale = _locale_columns(major)
    db_provider = "d.datlocprovider" if major >= 15 else "'c'"
    db_version = "pg_database_collation_actual_version(d.oid)" if major >= 15 else "NULL::text"
    query = f"""
    WITH uses AS (
      SELECT i.indexrelid, unnest(i.indcollation::oid[]) AS coll
      FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname !~ '^pg_toast'
    ), named AS (
      SELECT u.indexrelid::regclass::text AS idx,
             CASE WHEN c.oid = 100 THEN 'default' ELSE c.collname END AS name,
             CASE WHEN c.oid = 100 THEN {db_provider} ELSE c.collprovider END AS provider,
             CASE WHEN c.oid = 100 THEN {db_locale} ELSE {coll_locale} END AS locale,
             CASE WHEN c.oid = 100 THEN {db_version}
                  ELSE pg_collation_actual_version(c.oid) END AS version
      FROM uses u JOIN pg_collation c ON c.oid = u.coll
      CROSS JOIN pg_database d WHERE d.datname = current_database()
    )
    SELECT name, provider::text, locale, version, array_agg(DISTINCT idx ORDER BY idx)
    FROM named WHERE locale NOT IN ('C', 'POSIX') AND name NOT IN ('C', 'POSIX')
    GROUP BY 1, 2, 3, 4 ORDER BY 1
    """
    out = []
    for name, provider, locale, version, indexes in rows(conn, query):
        assert isinstance(indexes, list)
        out.append(
            UsedCollation(
                str(name),
                _PROVIDERS.get(str(provider), str(provider)),
                str(locale),
                None if version is None else str(version),
                tuple(str(i) for i in indexes),
            )
        )
    return out


def _stale(conn: Conn) -> list[str]:
    """Collations (and the database) whose recorded version differs from the library's."""
    found = [
        f"{name}: recorded {rec}, library {act}"
        for name, rec, act in rows(
            conn,
            "SELECT collname, collversion, pg_collation_actual_version(oid) FROM pg_collation "
            "WHERE collversion IS NOT NULL "
            "AND collversion IS DISTINCT FROM pg_collation_actual_version(oid) ORDER BY 1",
        )
    ]
    if server_major(conn) >= 15:
        found += [
            f"database {name}: recorded {rec}, library {act}"
            for name, rec, act in rows(
                conn,
                "SELECT datname, datcollversion, pg_database_collation_actual_version(oid) "
                "FROM pg_database WHERE datname = current_database() "
                "AND datcollversion IS NOT NULL "
                "AND datcollversion IS DISTINCT FROM pg_database_collation_actual_version(oid)",
            )
        ]
    return found


def collation_issues(conn: Conn, target: TargetFiles, target_major: int) -> list[Issue]:
    """Stale collation versions on the source; ICU in use when the target has no ICU."""
    out: list[Issue] = []
    stale = _stale(conn)
    if stale:
        out.append(
            new_issue(
                "collation-version-stale",
                Severity.WARNING,
                BOTH,
                f"{len(stale)} collation(s) report another library version than the one "
                "recorded when they were created: the OS or ICU already changed under the "
                "source, and text indexes using them may be corrupt now",
                "REINDEX the indexes that use them, then ALTER COLLATION ... REFRESH VERSION "
                "(ALTER DATABASE ... REFRESH COLLATION VERSION for the database)",
                stale,
            )
        )
    if not target.has_icu:
        major = server_major(conn)
        db_icu = major >= 15 and bool(
            rows(
                conn,
                "SELECT 1 FROM pg_database WHERE datname = current_database() "
                "AND datlocprovider = 'i'",
            )
        )
        users = [
            str(r[0])
            for r in rows(
                conn,
                "SELECT DISTINCT format('%s (%s)', c.collname, "
                "  coalesce(a.attrelid::regclass::text || '.' || quote_ident(a.attname), "
                "           'user collation')) "
                "FROM pg_collation c "
                "LEFT JOIN (pg_attribute a JOIN pg_class r ON r.oid = a.attrelid "
                "  AND r.relkind IN ('r', 'p', 'm', 'c', 'f', 'v')) ON a.attcollation = c.oid "
                "  AND a.attnum > 0 AND NOT a.attisdropped AND a.attrelid >= 16384 "
                "WHERE c.collprovider = 'i' AND (a.attrelid IS NOT NULL OR c.oid >= 16384) "
                "ORDER BY 1",
            )
        ]
        if db_icu:
            users.insert(0, "the database's default collation")
        if users:
            out.append(
                new_issue(
                    "icu-unsupported",
                    Severity.BLOCKER,
                    BOTH,
                    f"ICU collations are in use ({len(users)}), but the target binaries "
                    f"(PostgreSQL {target_major}) are built without ICU: their schema "
                    "cannot be created there",
                    "upgrade with binaries built with ICU (most distribution packages are), "
                    "or move the columns to a libc or builtin collation first",
                    users,
                )
            )
    return out


def target_version_changes(used: list[UsedCollation], target_dsn: str) -> list[Issue]:
    """Compare each used collation's library version with a running target cluster's."""
    changed: list[str] = []
    unknown: list[str] = []
    with psycopg.connect(target_dsn, autocommit=True) as tconn:
        for i, c in enumerate(used):
            if c.version is None or c.provider == "builtin":
                continue
            name = sql.Identifier(f"pgwarden_probe_{i}")
            try:
                with tconn.transaction(force_rollback=True):
                    tconn.execute(
                        sql.SQL("CREATE COLLATION pg_temp.{} (provider = {}, locale = {})").format(
                            name, sql.SQL(c.provider), sql.Literal(c.locale)
                        )
                    )
                    row = tconn.execute(
                        sql.SQL(
                            "SELECT pg_collation_actual_version('pg_temp.{}'::regcollation)"
                        ).format(name)
                    ).fetchone()
            except psycopg.Error as exc:
                unknown.append(f"{c.name} ({c.provider} {c.locale}): {str(exc).strip()}")
                continue
            version = None if row is None or row[0] is None else str(row[0])
            if version != c.version:
                changed.append(
                    f"{c.name} ({c.provider} {c.locale}): {c.version} -> {version}; "
                    f"indexes: {', '.join(c.indexes[:5])}"
                    + (f" and {len(c.indexes) - 5} more" if len(c.indexes) > 5 else "")
                )
    out: list[Issue] = []
    if changed:
        out.append(
            new_issue(
                "collation-version-change",
                Severity.WARNING,
                ("pg_upgrade",),
                f"{len(changed)} collation(s) used by indexes have another library version "
                "in the target binaries: pg_upgrade keeps those index files, and their order "
                "may no longer match",
                "REINDEX (CONCURRENTLY) the listed indexes right after pg_upgrade, before "
                "traffic; the logical route builds new indexes and is not affected",
                changed,
            )
        )
    if unknown:
        out.append(
            new_issue(
                "collation-unavailable",
                Severity.BLOCKER,
                BOTH,
                f"{len(unknown)} collation(s) used by indexes cannot be created with the "
                "target binaries",
                "install the locale (or ICU) on the target host, or change the columns' "
                "collation first",
                unknown,
            )
        )
    return out
