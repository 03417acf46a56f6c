"""A copy of the user's database in a throwaway cluster of its own major version.

Where the copy comes from, in order: a backup named by id; else (`auto`) the
newest *verified* backup of the same system and database in the catalogue;
else a fresh `pg_dump` of the database (read-only, one consistent snapshot),
full or schema-only. The roles the dump refers to are created NOLOGIN, the
database with the source's encoding (and its locale when this machine has it).
Ctrl-C kills pg_dump/pg_restore and removes the cluster.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from pgwarden.backup.catalogue import BackupInfo, Catalogue
from pgwarden.backup.manifest import format_time
from pgwarden.backup.tools import ToolFailed, installation_for, run_tool
from pgwarden.errors import DatabaseError, InputError, Refused, UsageError
from pgwarden.events import Observer, Phase
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.pg.connect import connect, describe_dsn
from pgwarden.pg.tool_conninfo import tool_connection

__all__ = [
    "COPY_KINDS",
    "CopyInfo",
    "Restored",
    "SourceFacts",
    "open_source",
    "read_source",
    "restored_copy",
]

CopyKind = Literal["auto", "backup", "dump", "schema"]
COPY_KINDS: tuple[str, ...] = ("auto", "backup", "dump", "schema")


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What the copy needs to know about the user's database (read once, read-only)."""

    database: str
    system_identifier: int | None
    major: int
    version: str
    encoding: str
    collate: str
    ctype: str
    roles: tuple[str, ...]
    size_bytes: int


@dataclass(frozen=True, slots=True)
class CopyInfo:
    """Where the copy came from and how long it took."""

    kind: str  # backup, dump, schema
    label: str  # backup id, or "pg_dump of user@host:port/db"
    taken_at: datetime | None  # the backup's snapshot time, or the dump's start
    restore_s: float
    dump_s: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "taken_at": None if self.taken_at is None else format_time(self.taken_at),
            "dump_seconds": round(self.dump_s, 3),
            "restore_seconds": round(self.restore_s, 3),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Restored:
    """A running throwaway cluster holding the copy."""

    cluster: Cluster
    database: str
    info: CopyInfo

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.database)


def read_source(conn: psycopg.Connection[tuple[object, ...]]) -> SourceFacts:
    """Facts about the connected database, for the copy and the report."""
    row = conn.execute(
        "SELECT current_database(), current_setting('server_version'),"
        " current_setting('server_version_num')::int, pg_encoding_to_char(d.encoding),"
        " d.datcollate, d.datctype, pg_database_size(d.oid)"
        " FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    assert row is not None
    db, version, num, enc, coll, ctype, size = row
    sysid: int | None
    try:
        with conn.transaction():
            got = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
        sysid = None if got is None else int(str(got[0]))
    except psycopg.errors.InsufficientPrivilege:
        sysid = None
    roles = tuple(
        str(r[0])
        for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"
        ).fetchall()
    )
    return SourceFacts(
        database=str(db),
        system_identifier=sysid,
        major=int(str(num)) // 10000,
        version=str(version).split()[0],
        encoding=str(enc),
        collate=str(coll),
        ctype=str(ctype),
        roles=roles,
        size_bytes=int(str(size)),
    )


def newest_verified(catalogue: Catalogue, facts: SourceFacts) -> BackupInfo | None:
    """The newest verified backup of this system and database, if any."""
    best: BackupInfo | None = None
    for b in catalogue.entries():
        m = b.manifest
        if m is None or not b.verified or m.database != facts.database:
            continue
        if facts.system_identifier is not None and m.system_identifier != facts.system_identifier:
            continue
        if best is None or (best.manifest is not None and m.ended_at > best.manifest.ended_at):
            best = b
    return best


def _prepare(cluster: Cluster, facts: SourceFacts, roles: tuple[str, ...]) -> list[str]:
    """Roles and an empty database like the source's; notes about what differs."""
    notes: list[str] = []
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        have = {str(r[0]) for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
        for role in roles:
            if role not in have:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        create = sql.SQL(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}"
        )
        try:
            conn.execute(
                create.format(
                    sql.Identifier(facts.database),
                    sql.Literal(facts.encoding),
                    sql.Literal(facts.collate),
                    sql.Literal(facts.ctype),
                )
            )
        except psycopg.Error:
            conn.execute(
                create.format(
                    sql.Identifier(facts.database),
                    sql.Literal(facts.encoding),
                    sql.Literal("C"),
                    sql.Literal("C"),
                )
            )
            notes.append(
                f"this machine lacks the source's locale {facts.collate!r}: the copy's "
                "database uses C (text sorts byte-wise; plans on text may differ)"
            )
    return notes


def _restore(cluster: Cluster, database: str, dump: Path, jobs: int, major: int) -> None:
    pg_restore = installation_for(major).tool("pg_restore")
    args = [
        str(pg_restore),
        f"--jobs={max(1, jobs)}",
        "--exit-on-error",
        "--no-tablespaces",
        f"--dbname={cluster.dsn(database)}",
        str(dump),
    ]
    try:
        run_tool(args, env=cluster.tool_env())
    except ToolFailed as exc:
        raise InputError(
            f"the copy could not be restored into PostgreSQL {cluster.installation.version}: "
            f"{exc.last_error}",
            hint="an extension or a role the schema needs may be missing on this machine "
            "for the source's major; install it, or use --copy schema",
        ) from None


def _dump(dsn: str, facts: SourceFacts, into: Path, *, schema_only: bool, jobs: int) -> None:
    inst = installation_for(facts.major)
    tool = tool_connection(dsn)
    args = [
        str(inst.tool("pg_dump")),
        "--format=directory",
        f"--jobs={max(1, jobs)}",
        f"--file={into}",
        "--no-subscriptions",
        "--no-publications",
    ]
    if schema_only:
        args.append("--schema-only")
    args.append(f"--dbname={tool.conninfo}")
    try:
        run_tool(args, env=tool.env)
    except ToolFailed as exc:
        raise DatabaseError(
            f"pg_dump of {describe_dsn(dsn)} failed: {tool.redact(exc.last_error)}",
            hint="the role needs SELECT on every table (and the sequences) it dumps",
        ) from None


def _choose_backup(
    kind: str, catalogue: Catalogue | None, backup_id: str | None, facts: SourceFacts
) -> BackupInfo | None:
    if backup_id is not None:
        if catalogue is None:
            raise UsageError("--backup needs a catalogue", hint="pass --catalogue DIR")
        info = catalogue.info(catalogue.resolve(backup_id))
        if not info.verified or info.manifest is None:
            raise Refused(
                f"backup {info.id} is {info.state}: only a verified backup is restored",
                hint=f"run `pgwarden backup verify {info.id}` first",
            )
        return info
    if kind in ("auto", "backup") and catalogue is not None:
        found = newest_verified(catalogue, facts)
        if found is not None:
            return found
    if kind == "backup":
        raise Refused(
            f"no verified backup of database {facts.database} in "
            f"{catalogue.location if catalogue else 'the catalogue'}",
            hint="run `pgwarden backup create` and `pgwarden backup verify --latest`, "
            "or use --copy dump",
        )
    return None


@contextlib.contextmanager
def restored_copy(
    dsn: str,
    facts: SourceFacts,
    *,
    kind: str = "auto",
    catalogue: Catalogue | None = None,
    backup_id: str | None = None,
    jobs: int = 2,
    observer: Observer | None = None,
    settings: dict[str, str] | None = None,
    schema_fallback: bool = False,
) -> Iterator[Restored]:
    """A throwaway cluster of the source's major holding a copy of the database.

    `schema_fallback`: when `kind="auto"` finds no verified backup, dump the schema only.
    """
    if kind not in COPY_KINDS:
        raise UsageError(f"unknown copy kind {kind!r}", hint=f"use one of {', '.join(COPY_KINDS)}")
    emit = observer or (lambda _e: None)
    backup = _choose_backup(kind, catalogue, backup_id, facts)
    inst = find_installation(facts.major)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgwarden-upgrade-")))
        dump_s = 0.0
        if backup is not None:
            assert backup.manifest is not None and catalogue is not None
            dump_dir = stack.enter_context(catalogue.storage.dump_dir(backup.id))
            roles = backup.manifest.roles
            label = backup.id
            taken_at: datetime | None = backup.manifest.snapshot_at
            copy_kind = "backup"
            dump_major = int(backup.manifest.pg_dump_version.split(".")[0])
        else:
            schema_only = kind == "schema" or (kind == "auto" and schema_fallback)
            emit(
                Phase(
                    message=f"pg_dump{' --schema-only' if schema_only else ''} of "
                    f"{describe_dsn(dsn)}"
                )
            )
            from pgwarden.backup.manifest import utc_now

            taken_at = utc_now()
            t0 = time.monotonic()
            dump_dir = work / "dump"
            _dump(dsn, facts, dump_dir, schema_only=schema_only, jobs=jobs)
            dump_s = time.monotonic() - t0
            roles = facts.roles
            label = f"pg_dump of {describe_dsn(dsn)}"
            copy_kind = "schema" if schema_only else "dump"
            dump_major = facts.major
        emit(Phase(message=f"restoring the copy ({label}) into PostgreSQL {inst.version}"))
        cluster = stack.enter_context(Cluster.start(inst, settings=settings))
        notes = _prepare(cluster, facts, roles)
        t0 = time.monotonic()
        _restore(cluster, facts.database, dump_dir, jobs, max(facts.major, dump_major))
        restore_s = time.monotonic() - t0
        info = CopyInfo(copy_kind, label, taken_at, restore_s, dump_s, tuple(notes))
        yield Restored(cluster, facts.database, info)


def open_source(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """A read-only session on the user's database, with short statement timeouts."""
    conn = connect(dsn, autocommit=True, application_name="pgwarden upgrade")
    conn.execute("SET default_transaction_read_only = on")
    conn.execute("SET statement_timeout = '60s'")
    conn.execute("SET lock_timeout = '5s'")
    return conn
