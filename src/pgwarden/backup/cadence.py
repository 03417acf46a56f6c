"""Restore-drill cadence: when the newest verified restore of a database ran, and whether
that is recent enough (`[tool.pgwarden.backup] drill_max_age_days`).

A drill counts when `pgwarden backup verify` (or `backup drill`) restored the
backup into a throwaway cluster and every check passed; its time is the
verification's, not the backup's. The audit shows it as its "restore drills"
section; in a protected environment an overdue or missing drill is an error
(PW509) when `drill_max_age_days` is set, a note otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.verdict import AuditFinding
from pgwarden.backup.catalogue import Catalogue
from pgwarden.backup.manifest import utc_now
from pgwarden.errors import ConfigError
from pgwarden.settings import Settings, config_table

__all__ = ["DrillStatus", "drill_max_age", "drill_status", "judge_drills"]


@dataclass(frozen=True, slots=True)
class DrillStatus:
    """The newest verified restore of one database in the catalogue."""

    catalogue: str
    database: str
    system_identifier: str | None  # None: the role may not read pg_control_system()
    backup_id: str | None
    verified_at: datetime | None
    age: timedelta | None


def drill_max_age(settings: Settings) -> timedelta | None:
    """`backup.drill_max_age_days` (None: not configured)."""
    backup = settings.raw.get("backup", {})
    value = backup.get("drill_max_age_days") if isinstance(backup, dict) else None
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(
            f"{settings.source}: backup.drill_max_age_days must be a positive number of days"
        )
    return timedelta(days=float(value))


def drill_status(conn: psycopg.Connection[tuple[object, ...]], catalogue: str) -> DrillStatus:
    """When the connected database's newest verified restore ran (from the catalogue)."""
    row = conn.execute(sql.SQL("SELECT current_database()")).fetchone()
    database = str(row[0]) if row else ""
    try:
        row = conn.execute(
            sql.SQL("SELECT system_identifier::text FROM pg_control_system()")
        ).fetchone()
        system = str(row[0]) if row else None
    except pge.InsufficientPrivilege:
        system = None
    best_id, best_at = None, None
    if system is not None and Path(catalogue).is_dir():
        for b in Catalogue.local(catalogue).entries():
            m, v = b.manifest, b.verification
            if not b.verified or m is None or v is None:
                continue
            if (str(m.system_identifier), m.database) != (system, database):
                continue
            if best_at is None or v.verified_at > best_at:
                best_id, best_at = b.id, v.verified_at
    age = None if best_at is None else utc_now() - best_at
    return DrillStatus(catalogue, database, system, best_id, best_at, age)


def judge_drills(
    status: DrillStatus, max_age: timedelta | None, *, protected: bool, config: str | None = None
) -> list[AuditFinding]:
    """PW509: the drill is missing or too old (error in a protected environment with
    `drill_max_age_days` set; otherwise a note saying when the last one ran). `config`:
    the config file in use (`Settings.source`), named in the help."""
    days = None if max_age is None else max_age.total_seconds() / 86400
    if status.system_identifier is None:
        what = (
            "cannot tell which backups are this database's: this role may not read "
            "pg_control_system()"
        )
        help_ = "run the audit as a role with pg_monitor (or EXECUTE on pg_control_system)"
    elif status.verified_at is None or status.age is None:
        what = f"no verified restore drill of database {status.database} in {status.catalogue}"
        help_ = "schedule `pgwarden backup drill` (create, restore into a throwaway cluster, check)"
    else:
        age_days = status.age.total_seconds() / 86400
        what = (
            f"newest verified restore drill of database {status.database}: backup "
            f"{status.backup_id}, verified {status.verified_at:%Y-%m-%d %H:%M %Z} "
            f"({age_days:.1f} days ago)"
        )
        help_ = "schedule `pgwarden backup drill` more often"
        if days is None or age_days <= days:
            limit = "" if days is None else f" (limit {days:g} days)"
            return [AuditFinding("PW509", "note", None, what + limit, "")]
        what += f", older than backup.drill_max_age_days = {days:g}"
    overdue = days is not None and protected
    if days is None:
        table = config_table("backup", config)
        help_ += f"; set drill_max_age_days under {table} to enforce a cadence"
    return [AuditFinding("PW509", "error" if overdue else "note", None, what, help_)]
