"""`backup create`: pg_dump of an exported snapshot, with checksums taken in that snapshot.

One connection opens a REPEATABLE READ transaction and exports its snapshot;
pg_dump (directory format, parallel jobs) dumps exactly that snapshot while the
same transaction computes per-table row counts and checksums in a thread. The
backup is built in a staging directory and published under its final name only
once the dump, the file checksums and the manifest are all written.
"""

from __future__ import annotations

import errno
import hashlib
import re
import secrets
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus

from pgwarden.backup import content
from pgwarden.backup.catalogue import DUMP, MANIFEST, Catalogue, write_file_atomic
from pgwarden.backup.manifest import FileEntry, Manifest, TableCheck, utc_now
from pgwarden.backup.tools import ToolFailed, installation_for, run_tool, tool_version
from pgwarden.errors import DatabaseError, EnvironmentProblem
from pgwarden.events import BackupProgress, Observer
from pgwarden.pg.connect import connect, describe_dsn
from pgwarden.pg.tool_conninfo import tool_connection
from pgwarden.threads import Background

__all__ = ["create_backup"]

_DUMPING_RE = re.compile(r'dumping contents of table "(.+)"')
_TOC_DATA_RE = re.compile(r"^(\d+); \d+ (\d+) TABLE DATA ")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40] or "db"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _data_files(dump: Path, oid_to_table: dict[int, str], pg_restore: Path) -> dict[str, str]:
    """file name -> table, from the dump's table of contents."""
    proc = subprocess.run(
        [str(pg_restore), "--list", str(dump)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ToolFailed("pg_restore", proc.returncode, proc.stderr)
    listing = proc.stdout
    result: dict[str, str] = {}
    for line in listing.splitlines():
        m = _TOC_DATA_RE.match(line)
        if m is None:
            continue
        table = oid_to_table.get(int(m.group(2)))
        if table is None:
            continue
        for f in dump.glob(f"{m.group(1)}.dat*"):
            result[f.name] = table
    return result


def _disk_full(where: str) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"disk full while writing the backup in {where}; nothing was recorded",
        hint="free space there or point --catalogue at a larger volume, then run it again",
    )


def create_backup(
    dsn: str, catalogue: Catalogue, *, jobs: int = 2, observer: Observer | None = None
) -> Manifest:
    """Take a consistent backup of the database at `dsn` into `catalogue`."""
    conn = connect(dsn, autocommit=True, application_name="pgwarden backup")
    try:
        return _create(conn, dsn, catalogue, jobs, observer)
    except psycopg.Error as exc:
        raise _query_failed(dsn, exc) from None
    finally:
        conn.close()


def _query_failed(dsn: str, exc: psycopg.Error) -> DatabaseError:
    """The error for a failed query of backup's own session, by SQLSTATE."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"backup of {describe_dsn(dsn)} failed"
    if exc.sqlstate == "57014":
        return DatabaseError(
            f"{where}: its query was cancelled by the server ({text})",
            hint="backup turns statement_timeout off for its own session, so another session "
            "cancelled it (pg_cancel_backend, a watchdog, an admin); nothing was recorded, "
            "run it again",
            sqlstate=exc.sqlstate,
        )
    if exc.sqlstate == "55P03":
        return DatabaseError(
            f"{where}: a table stayed locked by another session for longer than "
            f"lock_timeout ({text})",
            hint="nothing was recorded; run it again when the DDL holding the lock has "
            "finished, or raise lock_timeout for the backup's role",
            sqlstate=exc.sqlstate,
        )
    return DatabaseError(
        f"{where}: {text}",
        hint="nothing was recorded; check the server and the user's privileges",
        sqlstate=exc.sqlstate,
    )


def _create(
    conn: content.Conn, dsn: str, catalogue: Catalogue, jobs: int, observer: Observer | None
) -> Manifest:
    started_at = utc_now()
    content.lift_timeouts(conn)
    ident = content.identity(conn)
    inst = installation_for(ident.server_version_num // 10000)
    content.pin_output_settings(conn)
    conn.autocommit = False
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    row = conn.execute(
        "SELECT pg_export_snapshot(), clock_timestamp(), (CASE WHEN pg_is_in_recovery()"
        " THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,"
        " pg_database_size(current_database())"
    ).fetchone()
    assert row is not None
    snapshot_id, snapshot_at, lsn, db_size = str(row[0]), row[1], str(row[2]), int(str(row[3]))
    assert isinstance(snapshot_at, datetime)
    tables = content.list_tables_with_oid(conn)
    schema = content.schema_fingerprint(conn)
    roles = content.roles(conn)
    sizes = {f"{s}.{t}": b for _oid, s, t, b in tables}
    total = sum(sizes.values())
    backup_id = f"{snapshot_at:%Y%m%dT%H%M%SZ}-{_slug(ident.database)}-{secrets.token_hex(2)}"

    checks: list[TableCheck] = []
    failure: list[BaseException] = []
    done = {"checksum": 0, "dump": 0}
    lock = threading.Lock()

    def report(phase: str, size: int, item: str) -> None:
        with lock:
            done[phase] += size
            if observer is not None:
                observer(BackupProgress(phase=phase, done=done[phase], total=total, item=item))

    def checksum_worker() -> None:
        try:
            checks.extend(
                content.checksum_all(
                    conn,
                    [(s, t, b) for _oid, s, t, b in tables],
                    lambda name, size: report("checksum", size, name),
                )
            )
        except BaseException as exc:  # re-raised in the main thread
            failure.append(exc)

    def on_line(line: str) -> None:
        m = _DUMPING_RE.search(line)
        if m is not None:
            report("dump", sizes.get(m.group(1), 0), m.group(1))

    source = tool_connection(dsn)  # the password goes in the environment, never in argv
    with catalogue.storage.staging(backup_id) as staging:
        dump_dir = staging / DUMP
        worker = Background(target=checksum_worker, name="pgwarden-checksums", daemon=True)
        worker.start()
        try:
            run_tool(
                [
                    str(inst.tool("pg_dump")),
                    "--format=directory",
                    f"--jobs={jobs}",
                    "--verbose",
                    f"--snapshot={snapshot_id}",
                    f"--file={dump_dir}",
                    f"--dbname={source.conninfo}",
                ],
                env=source.env,
                on_line=on_line,
            )
            worker.join()
        except ToolFailed as exc:
            # A failed checksum query aborts the transaction, which ends the exported
            # snapshot under pg_dump: that failure, not pg_dump's, is the cause to report.
            checksums_failed = bool(failure) or (
                conn.info.transaction_status == TransactionStatus.INERROR
            )
            if not checksums_failed:
                conn.cancel_safe()
            worker.join()
            if checksums_failed and failure:
                raise failure[0] from None
            if "No space left on device" in exc.stderr:
                raise _disk_full(catalogue.location) from None
            raise DatabaseError(
                f"pg_dump failed: {source.redact(exc.last_error)}",
                hint="nothing was recorded; fix the cause above and run it again",
            ) from None
        except BaseException:
            conn.cancel_safe()
            worker.join()
            raise
        if failure:
            raise failure[0]
        conn.rollback()
        try:
            oid_to_table = {oid: f"{s}.{t}" for oid, s, t, _b in tables}
            owners = _data_files(dump_dir, oid_to_table, inst.tool("pg_restore"))
            files = []
            for path in sorted(dump_dir.iterdir()):
                files.append(
                    FileEntry(
                        path.name, path.stat().st_size, sha256_file(path), owners.get(path.name)
                    )
                )
            manifest = Manifest(
                id=backup_id,
                database=ident.database,
                database_oid=ident.database_oid,
                system_identifier=ident.system_identifier,
                server_version=ident.server_version,
                server_version_num=ident.server_version_num,
                pg_dump_version=tool_version(inst, "pg_dump"),
                encoding=ident.encoding,
                snapshot_at=snapshot_at,
                started_at=started_at,
                ended_at=utc_now(),
                lsn=lsn,
                jobs=jobs,
                size_bytes=sum(f.size for f in files),
                database_size_bytes=db_size,
                tables=tuple(checks),
                files=tuple(files),
                schema=schema,
                roles=roles,
            )
            text = manifest.to_json()
            write_file_atomic(staging / MANIFEST, text)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _disk_full(catalogue.location) from None
            raise EnvironmentProblem(
                f"cannot write the backup in {catalogue.location}: {exc.strerror or exc}",
                hint="nothing was recorded; check the catalogue directory",
            ) from None
        catalogue.storage.publish(staging, backup_id)
    return catalogue.manifest(backup_id)
