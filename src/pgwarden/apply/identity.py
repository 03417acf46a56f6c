"""Target identity guard: bind a database to one environment, refuse mismatches.

The first apply stamps the database (`pgwarden.target`): environment name,
`system_identifier` from `pg_control_system()`, database OID and name. Later
runs whose `--env` differs are refused before any statement runs. Protected
environments need `--env` spelled out, a typed confirmation of the database
name (or `--yes`), and for destructive steps a verified backup or
`--accept-data-loss "<reason>"`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.apply.journal import schema_exists
from pgwarden.errors import Refused, UsageError
from pgwarden.settings import Environment

__all__ = [
    "BackupCheck",
    "Identity",
    "Stamp",
    "check_target",
    "read_identity",
    "read_stamp",
    "verified_backup",
    "write_stamp",
]


@dataclass(frozen=True, slots=True)
class Identity:
    """What this database is, as the server reports it."""

    system_identifier: str
    database_oid: int
    database_name: str


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the first apply recorded about the database."""

    environment: str
    system_identifier: str
    database_oid: int
    database_name: str
    stamped_at: datetime
    stamped_by: str


def read_identity(conn: psycopg.Connection[tuple[object, ...]]) -> Identity:
    """system_identifier, database OID and name (needs pg_control_system)."""
    try:
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT system_identifier::text FROM pg_control_system()), d.oid::bigint, "
                "d.datname FROM pg_database d WHERE d.datname = current_database()"
            )
        ).fetchone()
    except pge.InsufficientPrivilege:
        raise Refused(
            "cannot read the server's system_identifier (pg_control_system() is not allowed "
            "for this role), so the target cannot be identified",
            hint="GRANT EXECUTE ON FUNCTION pg_control_system() TO <role>, or grant pg_monitor",
        ) from None
    assert row is not None
    return Identity(str(row[0]), int(str(row[1])), str(row[2]))


def read_stamp(conn: psycopg.Connection[tuple[object, ...]]) -> Stamp | None:
    if not schema_exists(conn):
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT environment, system_identifier, database_oid, database_name, stamped_at, "
            "stamped_by FROM pgwarden.target"
        )
    ).fetchone()
    if row is None:
        return None
    ts = row[4]
    assert isinstance(ts, datetime)
    return Stamp(str(row[0]), str(row[1]), int(str(row[2])), str(row[3]), ts, str(row[5]))


def write_stamp(
    conn: psycopg.Connection[tuple[object, ...]], env: str, ident: Identity, by: str
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO pgwarden.target (environment, system_identifier, database_oid, "
            "database_name, stamped_by) VALUES ({}, {}, {}, {}, {}) "
            "ON CONFLICT (singleton) DO UPDATE SET environment = excluded.environment, "
            "system_identifier = excluded.system_identifier, database_oid = excluded.database_oid, "
            "database_name = excluded.database_name, stamped_at = now(), "
            "stamped_by = excluded.stamped_by"
        ).format(
            *(
                sql.Literal(v)
                for v in (env, ident.system_identifier, ident.database_oid, ident.database_name, by)
            )
        )
    )


BackupCheck = Callable[[Identity], str | None]


def catalogue_backup_check(catalogue: str, max_age_hours: float) -> BackupCheck:
    """A check that finds a verified backup of the target, newer than `max_age_hours`,
    in the backup catalogue (`pgwarden backup create` + `verify`); returns its id."""

    def check(ident: Identity) -> str | None:
        from pgwarden.backup.api import verified_backup_since

        if not Path(catalogue).is_dir():
            return None
        since = datetime.now(UTC) - timedelta(hours=max_age_hours)
        info = verified_backup_since(
            catalogue, int(ident.system_identifier), since, database=ident.database_name
        )
        return None if info is None else info.id

    return check


def verified_backup(ident: Identity) -> str | None:
    """A verified backup of the target in the configured catalogue (default settings)."""
    from pgwarden.settings import load_settings

    cfg = load_settings()
    return catalogue_backup_check(cfg.backup_catalogue, cfg.backup_max_age_hours)(ident)


def check_target(
    *,
    env_name: str | None,
    environments: dict[str, Environment],
    ident: Identity,
    stamp: Stamp | None,
    destructive: Sequence[str],
    accept_data_loss: str | None,
    yes: bool,
    confirm: Callable[[str], str] | None,
    backup_check: BackupCheck = verified_backup,
    warn: Callable[[Refused], None] | None = None,
) -> tuple[Environment, str | None]:
    """The environment this run targets and the backup relied on; raises `Refused` otherwise.

    `destructive` lists what the plan's pending steps destroy. `confirm` asks the
    user to type the database name and returns what they typed. With `warn` (a
    dry run), the protection checks (confirmation, verified backup) report what a
    real run would refuse instead of raising; the target's identity still must match.
    """
    name = env_name
    if name is None:
        if stamp is None:
            raise UsageError(
                "no --env given and the database has never been stamped",
                hint="pass --env NAME (one of: "
                + (", ".join(sorted(environments)) or "any name")
                + ")",
            )
        name = stamp.environment
        if environments.get(name, Environment(name)).protected:
            raise Refused(
                f"{ident.database_name} is stamped as protected environment {name!r}; "
                "a protected environment must be named explicitly",
                hint=f"pass --env {name}",
            )
    if environments and name not in environments:
        raise UsageError(
            f"environment {name!r} is not declared in the configuration",
            hint="declared: " + ", ".join(sorted(environments)),
        )
    env = environments.get(name, Environment(name))
    if stamp is not None:
        if stamp.environment != name:
            raise Refused(
                f"refusing to apply: --env {name} but database {ident.database_name!r} "
                f"(system {ident.system_identifier}) is stamped {stamp.environment!r} "
                f"(since {stamp.stamped_at:%Y-%m-%d %H:%M}, by {stamp.stamped_by})",
                hint=f"check the database URL; if this really is {stamp.environment}, "
                f"pass --env {stamp.environment}",
            )
        if (stamp.system_identifier, stamp.database_oid) != (
            ident.system_identifier,
            ident.database_oid,
        ):
            raise Refused(
                f"refusing to apply: database {ident.database_name!r} carries the stamp of "
                f"{stamp.environment!r} from system {stamp.system_identifier} / database oid "
                f"{stamp.database_oid}, but this is system {ident.system_identifier} / oid "
                f"{ident.database_oid}: it is a copy or a restore",
                hint="if this copy is meant to be a target of its own, run "
                "`pgwarden apply --restamp` with the right --env",
            )
    backup: str | None = None
    if env.protected:
        if env_name is None:
            raise Refused(
                f"{name!r} is protected: pass --env {name} explicitly", hint=f"--env {name}"
            )
        if warn is not None:
            if destructive:
                backup = backup_check(ident)
                if backup is None and not (accept_data_loss and accept_data_loss.strip()):
                    warn(_no_backup(name, ident, destructive))
            return env, backup
        if not yes:
            if confirm is None:
                raise Refused(
                    f"{name!r} is protected and there is no terminal to confirm on",
                    hint="pass --yes (in CI) after checking the target",
                )
            typed = confirm(ident.database_name)
            if typed.strip() != ident.database_name:
                raise Refused(
                    f"confirmation did not match the database name {ident.database_name!r}",
                    hint="type the database name exactly, or pass --yes",
                )
        if destructive:
            backup = backup_check(ident)
            if backup is None and not (accept_data_loss and accept_data_loss.strip()):
                raise _no_backup(name, ident, destructive)
    return env, backup


def _no_backup(name: str, ident: Identity, destructive: Sequence[str]) -> Refused:
    return Refused(
        f"refusing destructive steps on protected environment {name!r} without a "
        f"verified backup of system {ident.system_identifier}: " + "; ".join(destructive),
        hint="verify a backup (`pgwarden backup verify`), or pass "
        '--accept-data-loss "<reason>" (the reason is journalled)',
    )
