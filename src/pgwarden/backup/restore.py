"""`backup restore --at TIME`: pick the backup by an explicit rule, restore, prove it.

The rule: the newest *verified* backup of this system_identifier (and database)
whose dump ended at or before TIME. TIME must carry an offset. Nothing else is
ever chosen; when nothing qualifies the refusal lists the nearest backups and
why each does not count.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from pgwarden.backup import content
from pgwarden.backup.catalogue import BackupInfo, Catalogue
from pgwarden.backup.collisions import (
    TargetObject,
    clash_drops,
    conflicts,
    kind_clashes,
    list_objects,
)
from pgwarden.backup.manifest import Manifest, format_duration, format_time
from pgwarden.backup.tools import ToolFailed, installation_for, run_tool
from pgwarden.backup.verify import check_files, compare_database, restore_progress
from pgwarden.errors import DatabaseError, InputError, Refused, UsageError
from pgwarden.events import BackupProgress, Observer
from pgwarden.pg.connect import connect, describe_dsn
from pgwarden.pg.tool_conninfo import tool_connection
from pgwarden.settings import Settings, config_table

__all__ = [
    "RestoreResult",
    "Target",
    "check_environment",
    "describe_target",
    "restore_backup",
    "select_backup",
]


@dataclass(frozen=True, slots=True)
class Target:
    """What the restore would write into."""

    dsn: str
    description: str
    identity: content.Identity
    objects: tuple[TargetObject, ...]
    environment: str | None

    def conflicts(self, m: Manifest) -> tuple[TargetObject, ...]:
        """Objects that make the target not empty for a restore of `m` (relations of any
        kind; types and functions in the schemas `m` restores; not pgwarden's bookkeeping)."""
        return conflicts(self.objects, m)


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """A finished restore and the proof that the data matches the manifest."""

    backup: Manifest
    target: str
    restore_seconds: float
    mismatches: tuple[str, ...]
    dropped: tuple[str, ...] = ()  # --clean: target objects of another kind, dropped first

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _short(sysid: int) -> str:
    return str(sysid)[:10] + "…"


def _why_not(b: BackupInfo, at: datetime) -> str:
    assert b.manifest is not None
    delta = b.manifest.ended_at - at
    side = "after" if delta > timedelta(0) else "before"
    when = f"{format_duration(delta.total_seconds())} {side} TIME"
    if not b.verified:
        return f"{when}, {b.state}: run `pgwarden backup verify {b.id}`"
    if delta > timedelta(0):
        return f"{when}: ended after TIME"
    return when


def _source_hint(others: list[tuple[int, str]], system_identifier: int) -> str:
    """How to name the source whose backups the catalogue holds: `--database` alone for
    another database of the same system, `--from-system` for a replacement server."""
    same = sorted({db for sid, db in others if sid == system_identifier})
    hints = []
    if len(same) == 1:
        name = same[0]
        hints.append(
            f"to restore database {name!r} of this system, pass --database {shlex.quote(name)}"
        )
    elif same:
        names = ", ".join(repr(db) for db in same[:5])
        hints.append(f"to restore another database of this system ({names}), pass --database NAME")
    if any(sid != system_identifier for sid, _db in others):
        hints.append(
            "if the target is a replacement server, name the source with --from-system SYSID "
            "(and --database NAME if its name differs)"
        )
    return "; ".join(hints)


def select_backup(
    entries: list[BackupInfo], system_identifier: int, database: str, at: datetime
) -> BackupInfo:
    """The newest verified backup of (system_identifier, database) ended at or before `at`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise UsageError("TIME has no UTC offset", hint="e.g. 2024-02-21T04:55:00+00:00")
    ours = [
        b
        for b in entries
        if b.manifest is not None
        and b.manifest.system_identifier == system_identifier
        and b.manifest.database == database
    ]
    eligible = [b for b in ours if b.verified and b.manifest and b.manifest.ended_at <= at]
    if eligible:
        return max(eligible, key=lambda b: b.manifest.ended_at if b.manifest else at)
    what = f"database {database!r} of system {system_identifier}"
    lines = [f"no verified backup of {what} ended at or before {format_time(at)}"]

    def distance(b: BackupInfo) -> float:
        assert b.manifest is not None
        return abs((b.manifest.ended_at - at).total_seconds())

    nearest = sorted(ours, key=distance)[:5]
    if nearest:
        lines.append("nearest backups of this database:")
        for b in nearest:
            assert b.manifest is not None
            lines.append(f"  {b.id}  ended {format_time(b.manifest.ended_at)}  ({_why_not(b, at)})")
    others = sorted(
        {
            (b.manifest.system_identifier, b.manifest.database)
            for b in entries
            if b.manifest is not None and b not in ours
        }
    )
    hint = "choose a later TIME only if you accept losing what was written since"
    if others:
        listed = ", ".join(f"{db!r} of system {sid}" for sid, db in others[:5])
        lines.append(f"the catalogue also holds backups of {listed}")
        hint = _source_hint(others, system_identifier)
    damaged = [b for b in entries if b.manifest is None]
    if damaged:
        lines.append("damaged backups, not considered (their time and database are unknown):")
        lines += [f"  {b.problem or b.id}" for b in damaged[:5]]
        if len(damaged) > 5:
            lines.append(f"  … and {len(damaged) - 5} more (`pgwarden backup list`)")
    if not ours and not others:
        readable = " readable" if damaged else ""
        lines.append(f"the catalogue holds no{readable} backup{'' if damaged else 's'}")
    if damaged:  # the backup wanted may be among them: the catalogue needs repair
        raise InputError(
            "\n".join(lines),
            hint="put back the damaged manifest.json from a copy of the catalogue, or move "
            "that backup out of the catalogue (the other backups are unaffected); "
            f"otherwise {hint}",
        )
    raise Refused("\n".join(lines), hint=hint)


def _stamp(conn: content.Conn) -> str | None:
    """The environment name stamped by `pgwarden apply` (schema `pgwarden`), if any."""
    row = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'pgwarden' AND column_name IN ('environment', 'env')"
        " ORDER BY table_name <> 'target', table_name LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    query = sql.SQL("SELECT {} FROM {} LIMIT 1").format(
        sql.Identifier(str(row[1])), sql.Identifier("pgwarden", str(row[0]))
    )
    try:
        stamped = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    return None if stamped is None or stamped[0] is None else str(stamped[0])


def describe_target(dsn: str) -> Target:
    """Identity, existing tables and environment stamp of the restore target."""
    with connect(dsn, application_name="pgwarden backup restore") as conn:
        content.lift_timeouts(conn)
        ident = content.identity(conn)
        objects = list_objects(conn)
        env = _stamp(conn)
    return Target(dsn, describe_dsn(dsn), ident, objects, env)


def check_environment(target: Target, env: str | None, settings: Settings) -> None:
    """Refuse a target stamped as a protected (or undeclared) environment unless --env names it."""
    stamped = target.environment
    if stamped is None:
        if env is not None:
            declared = settings.environments.get(env)
            if declared is None:
                raise UsageError(
                    f"--env {env}: no such environment in the configuration",
                    hint="declare it under " + config_table("environments", settings.source),
                )
        return
    if env is not None and env != stamped:
        raise Refused(
            f"target {target.description} is stamped as environment {stamped!r}, not {env!r}",
            hint="check the URL; you may be pointing at the wrong database",
        )
    from pgwarden.pg.stamp import stamped_protection
    from pgwarden.settings import is_protected, why_protected

    recorded = stamped_protection(target.dsn)  # apply's rule: the stamp travels
    if is_protected(stamped, settings.environments, recorded) and env is None:
        reason = why_protected(stamped, settings.environments, recorded)
        raise Refused(
            f"target {target.description} is stamped as environment {stamped!r} ({reason})",
            hint=f"pass --env {stamped} to restore into it",
        )


def restore_backup(
    catalogue: Catalogue,
    backup_id: str,
    target: Target,
    *,
    jobs: int = 2,
    clean: bool = False,
    no_owner: bool = False,
    observer: Observer | None = None,
) -> RestoreResult:
    """Restore `backup_id` into the target, then compare its tables with the manifest;
    `observer` gets BackupProgress events (tables loaded, in rows; then the check)."""
    m = catalogue.manifest(backup_id)
    present = target.conflicts(m)
    if present and not clean:
        shown = ", ".join(str(o) for o in present[:5])
        raise Refused(
            f"target {target.description} is not empty: it has {len(present)} "
            f"object{'s' if len(present) != 1 else ''} "
            f"({shown}{', …' if len(present) > 5 else ''})",
            hint="restore into an empty database, or pass --clean to drop and recreate "
            "the objects the backup contains",
        )
    clashes = kind_clashes(target.objects, m) if clean else ()
    dump_major = int(m.pg_dump_version.split(".")[0])
    inst = installation_for(max(target.identity.server_version_num // 10000, dump_major))
    with catalogue.storage.dump_dir(backup_id) as dump_dir:
        problems = check_files(m.files, dump_dir)
        if problems:
            raise Refused(
                f"backup {backup_id} changed since it was taken: {problems[0]}",
                hint="nothing was restored; choose another backup with an earlier --at",
            )
        if clashes:
            _drop_clashes(target, clashes)
        args = [
            str(inst.tool("pg_restore")),
            f"--jobs={jobs}",
            "--exit-on-error",
            "--verbose",  # its 'processing data for table' lines are the progress
            *(["--clean", "--if-exists"] if clean else []),
            *(["--no-owner", "--no-privileges"] if no_owner else []),
        ]
        dest = tool_connection(target.dsn)  # the password goes in the environment, not argv
        t0 = time.monotonic()
        try:
            run_tool(
                [*args, f"--dbname={dest.conninfo}", str(dump_dir)],
                env=dest.env,
                on_line=restore_progress(m, observer),
            )
        except ToolFailed as exc:
            raise DatabaseError(
                f"pg_restore into {target.description} failed: {dest.redact(exc.last_error)}",
                hint="the target may be partly restored; fix the cause, then run again "
                "with --clean",
            ) from None
        seconds = time.monotonic() - t0
    if observer is not None:
        observer(
            BackupProgress(phase="check", done=0, total=len(m.tables), item="comparing checksums")
        )
    mismatches = compare_database(target.dsn, m, only_backed_up=True)
    dropped = tuple(str(o) for o in clashes)
    return RestoreResult(m, target.description, seconds, tuple(mismatches), dropped)


def _drop_clashes(target: Target, clashes: tuple[TargetObject, ...]) -> None:
    """Drop (without CASCADE, in one transaction) target objects named like one of the
    backup's objects of another kind, which pg_restore --clean cannot drop."""
    drops = clash_drops(clashes)
    named = ", ".join(str(o) for o in clashes)
    todo = "; ".join(d.as_string() for d in drops)
    try:
        with (
            connect(target.dsn, application_name="pgwarden backup restore") as conn,
            conn.transaction(),
        ):
            conn.execute("SET LOCAL lock_timeout = '5s'")
            for drop in drops:
                conn.execute(drop)
    except psycopg.Error as exc:
        detail = exc.diag.message_detail or ""
        raise Refused(
            f"target {target.description} has {named} where the backup has an object of "
            f"another kind, and it cannot be dropped: {str(exc).strip().splitlines()[0]}"
            + (f" ({detail.strip()})" if detail.strip() else ""),
            hint=f"nothing was restored; drop or rename it yourself ({todo}), then run again",
        ) from None
