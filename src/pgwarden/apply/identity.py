"""Target identity guard: bind a database to one environment, refuse mismatches.

The first apply stamps the database (`pgwarden.target`): environment name,
whether it is protected, `system_identifier` from `pg_control_system()`,
database OID and name, data directory and port. Later runs whose `--env`
differs, or that reach a copy of the stamped database, are refused before any
statement runs. A database that holds tables but no stamp is never stamped
silently: `--restamp` adopts it. Protected environments (`is_protected`: the
configuration, or the stamp wherever pgwarden runs) need `--env` spelled out,
a typed confirmation of the database name (or `--yes`), and for destructive
steps a verified backup or `--accept-data-loss "<reason>"`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.errors import DatabaseError, Refused, UsageError
from pgwarden.pg.journal_access import check_journal_readable
from pgwarden.settings import Environment, check_env_name, is_protected, why_protected

__all__ = [
    "BackupCheck",
    "Identity",
    "Stamp",
    "check_target",
    "check_writable",
    "read_identity",
    "read_stamp",
    "stamp_database",
    "user_tables",
    "verified_backup",
    "write_stamp",
]


@dataclass(frozen=True, slots=True)
class Identity:
    """What this database is, as the server reports it."""

    system_identifier: str
    database_oid: int
    database_name: str
    data_directory: str | None = None  # None: the role may not read it
    port: int | None = None


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the first apply recorded about the database."""

    environment: str
    system_identifier: str
    database_oid: int
    database_name: str
    stamped_at: datetime
    stamped_by: str
    protected: bool | None = None  # None: stamped before protection was recorded
    data_directory: str | None = None
    port: int | None = None

    @property
    def complete(self) -> bool:
        """Whether the stamp records everything this version records."""
        return self.protected is not None and self.port is not None


def read_identity(conn: psycopg.Connection[tuple[object, ...]]) -> Identity:
    """system_identifier, database OID and name, data directory, port (needs
    pg_control_system; the data directory is read where pg_settings shows it)."""
    try:
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT system_identifier::text FROM pg_control_system()), d.oid::bigint, "
                "d.datname, (SELECT setting FROM pg_settings WHERE name = 'data_directory'), "
                "current_setting('port')::int "
                "FROM pg_database d WHERE d.datname = current_database()"
            )
        ).fetchone()
    except pge.InsufficientPrivilege:
        raise Refused(
            "cannot read the server's system_identifier (pg_control_system() is not allowed "
            "for this role), so the target cannot be identified",
            hint="GRANT EXECUTE ON FUNCTION pg_control_system() TO <role>, or grant pg_monitor",
        ) from None
    assert row is not None
    return Identity(
        str(row[0]),
        int(str(row[1])),
        str(row[2]),
        None if row[3] is None else str(row[3]),
        int(str(row[4])),
    )


def check_writable(conn: psycopg.Connection[tuple[object, ...]], ident: Identity) -> None:
    """Raise `DatabaseError` (exit 2) when the database cannot be written: a hot standby,
    or `default_transaction_read_only` on, so that apply names the cause up front."""
    row = conn.execute(
        sql.SQL("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
    ).fetchone()
    assert row is not None
    if row[0]:
        raise DatabaseError(
            f"database {ident.database_name!r} is on a hot standby (a read-only replica): "
            "nothing can be applied there",
            hint="point --database-url at the primary server",
            sqlstate="25006",
        )
    if row[1] == "on":
        raise DatabaseError(
            f"database {ident.database_name!r} is read-only for this session "
            "(default_transaction_read_only = on, set for the database, the role or the URL)",
            hint="apply with a role or URL where it is off, or turn it off: "
            "ALTER DATABASE <name> SET default_transaction_read_only = off",
            sqlstate="25006",
        )


_USER_TABLES = sql.SQL(
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'f', 'm') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e')"
)


def user_tables(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """How many tables the database holds outside the system schemas, pgwarden's own and
    extensions', if any of them holds data; 0 when none does (a new database, or one
    where a migration tool created only its empty version table)."""
    row = conn.execute(sql.SQL("SELECT count(*) ") + _USER_TABLES).fetchone()
    tables = int(str(row[0])) if row else 0
    if tables == 0:
        return 0
    try:  # stops at the first table with data: few locks, even on a large schema
        row = conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 ")
            + _USER_TABLES
            + sql.SQL(" AND pg_relation_size(c.oid) > 0)")
        ).fetchone()
    except pge.LockNotAvailable:
        return tables  # a table locked exclusively by someone: assume it holds data
    return tables if row and row[0] else 0


def read_stamp(
    conn: psycopg.Connection[tuple[object, ...]], *, lost_ok: bool = False
) -> Stamp | None:
    """The stamp, or None when the database was never stamped.

    Raises `DatabaseError` when pgwarden's journal is there but its stamp table
    is not (dropped by hand): the database's identity is lost, `--restamp` sets
    it (`lost_ok`: return None instead), and when this role may not read the
    pgwarden schema (`check_journal_readable`).
    """
    check_journal_readable(conn)
    row = conn.execute(
        sql.SQL(
            "SELECT to_regclass('pgwarden.target') IS NOT NULL, "
            "to_regclass('pgwarden.runs') IS NOT NULL"
        )
    ).fetchone()
    assert row is not None
    if not row[0]:
        if lost_ok or not row[1]:
            return None
        raise DatabaseError(
            "the table pgwarden.target (this database's environment stamp) is missing, "
            "though pgwarden's journal is there: it was dropped, so the database's "
            "identity is lost",
            hint="check which environment this database is, then pass --restamp with that "
            "--env to record it again (the history in pgwarden.applied is kept)",
        )
    row = conn.execute(sql.SQL("SELECT to_jsonb(t) FROM pgwarden.target t")).fetchone()
    if row is None:
        return None
    t = row[0]
    assert isinstance(t, dict)
    env = check_env_name(str(t["environment"]), "the stamp in pgwarden.target")
    return Stamp(
        env,
        str(t["system_identifier"]),
        int(t["database_oid"]),
        str(t["database_name"]),
        datetime.fromisoformat(str(t["stamped_at"])),
        str(t["stamped_by"]),
        None if t.get("protected") is None else bool(t["protected"]),
        None if t.get("data_directory") is None else str(t["data_directory"]),
        None if t.get("port") is None else int(t["port"]),
    )


def write_stamp(
    conn: psycopg.Connection[tuple[object, ...]],
    env: str,
    ident: Identity,
    by: str,
    *,
    protected: bool,
) -> None:
    """Record (or replace) the stamp: `env`, whether it is protected, and `ident`."""
    values = (
        env,
        ident.system_identifier,
        ident.database_oid,
        ident.database_name,
        by,
        protected,
        ident.data_directory,
        ident.port,
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO pgwarden.target (environment, system_identifier, database_oid, "
            "database_name, stamped_by, protected, data_directory, port) VALUES ({}) "
            "ON CONFLICT (singleton) DO UPDATE SET environment = excluded.environment, "
            "system_identifier = excluded.system_identifier, database_oid = excluded.database_oid, "
            "database_name = excluded.database_name, stamped_at = now(), "
            "stamped_by = excluded.stamped_by, protected = excluded.protected, "
            "data_directory = excluded.data_directory, port = excluded.port"
        ).format(sql.SQL(", ").join(sql.Literal(v) for v in values))
    )


def stamp_database(
    conn: psycopg.Connection[tuple[object, ...]], env: str, *, protected: bool, by: str
) -> Stamp:
    """Stamp the database as `env` without applying anything (adopt it); returns the stamp."""
    from pgwarden.apply.journal import Journal

    check_env_name(env)
    Journal.ensure_target(conn)
    write_stamp(conn, env, read_identity(conn), by, protected=protected)
    stamp = read_stamp(conn)
    assert stamp is not None
    return stamp


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
    restamp: bool = False,
    tables: int = 0,
    history: bool = False,
    config: str | None = None,
) -> tuple[Environment, str | None]:
    """The environment this run targets and the backup relied on; raises `Refused` otherwise.

    The returned environment's `protected` is the decision of `is_protected`.
    `destructive` lists what the plan's pending steps destroy. `confirm` asks the
    user to type the database name and returns what they typed. With `restamp`,
    the stamp is replaced (a deliberate adoption); without it, a database with
    `tables` holding data (see `user_tables`) or `history` but no stamp is
    refused rather than stamped. With
    `warn` (a dry run), the protection checks (confirmation, verified backup)
    report what a real run would refuse instead of raising, and so does a
    database with data but no stamp; a stamp naming another target still
    raises. `config` is the file that declares `environments`
    (`Settings.source`), for the hints.
    """
    if env_name is not None:
        check_env_name(env_name)
    name = env_name
    if name is None:
        if stamp is None or restamp:
            raise UsageError(
                "no --env given and the database has never been stamped"
                if stamp is None
                else "--restamp needs the environment to record",
                hint="pass --env NAME (one of: "
                + (", ".join(sorted(environments)) or "any name")
                + ")",
            )
        name = stamp.environment
        if is_protected(name, environments, stamp.protected):
            raise Refused(
                f"{ident.database_name} is stamped as protected environment {name!r} "
                f"({why_protected(name, environments, stamp.protected)}); "
                "a protected environment must be named explicitly",
                hint=f"pass --env {name}",
            )
    check_env_name(
        name,
        environments=environments,
        stamp_env=None if stamp is None else stamp.environment,
        source=config,
    )
    if stamp is not None and not restamp:
        _same_target(name, ident, stamp)
    elif stamp is None and not restamp and (tables or history):
        what = f"{tables} table{'s' * (tables != 1)} with data" if tables else "pgwarden history"
        unstamped = Refused(
            f"database {ident.database_name!r} holds {what} but no pgwarden stamp: it was "
            "never applied to by pgwarden, or its stamp was dropped; refusing to stamp it "
            f"as {name!r} without being told",
            hint=f"if this database really is {name}, adopt it with --restamp --env {name} "
            "(the history in pgwarden.applied decides what is already applied)",
        )
        if warn is None:
            raise unstamped
        warn(unstamped)  # a dry run previews what --restamp would then run
    stamped = stamp.protected if stamp is not None and stamp.environment == name else None
    if restamp:
        stamped = None
    protected = is_protected(name, environments, stamped)
    why = why_protected(name, environments, stamped)
    if restamp and stamp is not None and not protected:  # leaving a protected stamp
        protected = is_protected(stamp.environment, environments, stamp.protected)
        why = f"restamping a database stamped as protected environment {stamp.environment!r}"
    env = Environment(name, protected)
    backup: str | None = None
    if protected:
        if env_name is None:
            raise Refused(
                f"{name!r} is protected ({why}): pass --env {name} explicitly",
                hint=f"--env {name}",
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
                    f"{name!r} is protected ({why}) and there is no terminal to confirm on",
                    hint="pass --yes (in CI) after checking the target"
                    + ("" if name in environments else f", or declare {name} in pgwarden.toml"),
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


def _same_target(name: str, ident: Identity, stamp: Stamp) -> None:
    """Refuse when `--env name` or the server is not what `stamp` recorded."""
    if stamp.environment != name:
        raise Refused(
            f"wrong target: --env {name} but database {ident.database_name!r} "
            f"(system {ident.system_identifier}) is stamped {stamp.environment!r} "
            f"(since {stamp.stamped_at:%Y-%m-%d %H:%M}, by {stamp.stamped_by})",
            hint=f"check the database URL; if this really is {stamp.environment}, "
            f"pass --env {stamp.environment}",
        )
    recorded = (stamp.system_identifier, stamp.database_oid)
    if recorded != (ident.system_identifier, ident.database_oid):
        raise Refused(
            f"wrong target: database {ident.database_name!r} carries the stamp of "
            f"{stamp.environment!r} from system {stamp.system_identifier} / database oid "
            f"{stamp.database_oid}, but this is system {ident.system_identifier} / oid "
            f"{ident.database_oid}: it is a copy or a restore",
            hint="if this copy is meant to be a target of its own, run "
            "`pgwarden apply --restamp` with the right --env",
        )
    moved = [
        f"{what} {was} (now {now})"
        for what, was, now in (
            ("data directory", stamp.data_directory, ident.data_directory),
            ("port", stamp.port, ident.port),
        )
        if was is not None and now is not None and was != now
    ]
    if moved:
        raise Refused(
            f"wrong target: database {ident.database_name!r} carries the stamp of "
            f"{stamp.environment!r} and the same system identifier, but the stamp was "
            f"written on a server with {', '.join(moved)}: it is a physical copy "
            "(pg_basebackup, a snapshot), or the server moved",
            hint="if this server is meant to be a target of its own, or it really is "
            f"{stamp.environment} after a move, run `pgwarden apply --restamp` with the "
            "right --env",
        )


def _no_backup(name: str, ident: Identity, destructive: Sequence[str]) -> Refused:
    return Refused(
        f"refusing destructive steps on protected environment {name!r} without a "
        f"verified backup of system {ident.system_identifier}: " + "; ".join(destructive),
        hint="verify a backup (`pgwarden backup verify`), or pass "
        '--accept-data-loss "<reason>" (the reason is journalled)',
    )
