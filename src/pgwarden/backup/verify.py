"""`backup verify`: restore into a throwaway cluster and compare with the manifest.

Order of checks: every dump file's size and SHA-256 (a truncated or edited file
is named with the table whose data it holds), then a parallel pg_restore with
--exit-on-error, then row counts and content checksums per table and the schema
fingerprint (objects, constraints, index validity). The outcome is recorded in
the catalogue; an interrupted verify records nothing and leaves no cluster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.backup import content
from pgwarden.backup.catalogue import Catalogue
from pgwarden.backup.dump import sha256_file
from pgwarden.backup.manifest import FileEntry, Manifest, Verification, utc_now
from pgwarden.backup.tools import ToolFailed, installation_for, run_tool
from pgwarden.errors import InputError, Refused
from pgwarden.events import BackupProgress, Observer
from pgwarden.pg.cluster import Cluster

__all__ = ["check_files", "verify_backup"]

_PROCESSING_RE = re.compile(r'processing data for table "(.+)"')


def restore_progress(m: Manifest, observer: Observer | None) -> Callable[[str], None]:
    """A pg_restore --verbose stderr reader that reports each table it loads, in rows."""
    sizes = {t.qualified: t.rows for t in m.tables}
    total = sum(sizes.values())
    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        hit = _PROCESSING_RE.search(line)
        if hit is not None and observer is not None:
            done += sizes.get(hit.group(1), 0)
            observer(BackupProgress(phase="restore", done=done, total=total, item=hit.group(1)))

    return on_line


def check_files(
    files: Sequence[FileEntry], dump_dir: Path, *, sizes_only: bool = False
) -> list[str]:
    """Problems with the dump files, one line each, naming the table they hold."""
    problems: list[str] = []
    for f in files:
        path = dump_dir / f.path
        what = f"dump file {f.path}" + (f" (data of table {f.table})" if f.table else "")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{what}: missing")
            continue
        if size != f.size:
            kind = "truncated" if size < f.size else "grown"
            problems.append(f"{what}: {kind}, {size} bytes instead of {f.size}")
        elif not sizes_only and sha256_file(path) != f.sha256:
            problems.append(f"{what}: content edited (SHA-256 differs from the manifest)")
    return problems


def _first_table(problems: Sequence[str]) -> str | None:
    for p in problems:
        m = re.search(r"table (.+?)[:)]", p)
        if m:
            return m.group(1)
    return problems[0] if problems else None


def _result(
    m: Manifest,
    started: float,
    restore_s: float,
    restored_on: str,
    problems: Sequence[str],
    message: str,
) -> Verification:
    return Verification(
        backup_id=m.id,
        manifest_sha256=m.checksum_sha256,
        ok=not problems,
        verified_at=utc_now(),
        restore_seconds=round(restore_s, 3),
        total_seconds=round(time.monotonic() - started, 3),
        restored_on=restored_on,
        tables_checked=len(m.tables),
        mismatches=tuple(problems),
        first_mismatch=_first_table(problems),
        message=message,
    )


def prepare_database(cluster: Cluster, m: Manifest) -> str:
    """Create the manifest's roles and an empty database named like the source; its DSN."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        existing = {str(r[0]) for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
        for role in m.roles:
            if role not in existing:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(sql.Identifier(m.database), sql.Literal(m.encoding))
        )
    return cluster.dsn(m.database)


def compare_database(dsn: str, m: Manifest, *, only_backed_up: bool = False) -> list[str]:
    """Row counts, checksums and schema of the database at `dsn` against `m`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        content.lift_timeouts(conn)
        content.pin_output_settings(conn)
        tables = content.list_tables(conn)
        if only_backed_up:
            wanted = {(t.schema, t.name) for t in m.tables}
            tables = [t for t in tables if (t[0], t[1]) in wanted]
        have = content.checksum_all(conn, tables)
        problems = content.compare_tables(m.tables, have)
        if not only_backed_up:
            problems += content.compare_schema(m.schema, content.schema_fingerprint(conn))
    return problems


def verify_backup(
    catalogue: Catalogue, backup_id: str, *, jobs: int = 2, observer: Observer | None = None
) -> Verification:
    """Restore `backup_id` into a throwaway cluster, check it, record and return the outcome."""
    started = time.monotonic()
    try:
        m = catalogue.manifest(backup_id)
    except InputError as exc:
        raise Refused(
            f"backup {backup_id} fails verification: {exc.message}",
            hint=exc.hint or "do not trust this backup; restore from another one",
        ) from None
    with catalogue.storage.dump_dir(backup_id) as dump_dir:
        if observer is not None:
            observer(
                BackupProgress(
                    phase="files", done=0, total=m.size_bytes, item="checking file checksums"
                )
            )
        problems = check_files(m.files, dump_dir)
        if problems:
            v = _result(m, started, 0.0, "", problems, "dump files differ from the manifest")
            catalogue.record(v)
            return v
        dump_major = int(m.pg_dump_version.split(".")[0])
        inst = installation_for(max(m.server_major, dump_major))
        on_line = restore_progress(m, observer)
        with Cluster.start(inst) as cluster:
            dsn = prepare_database(cluster, m)
            t0 = time.monotonic()
            try:
                run_tool(
                    [
                        str(inst.tool("pg_restore")),
                        f"--jobs={jobs}",
                        "--exit-on-error",
                        "--no-tablespaces",
                        "--verbose",
                        f"--dbname={dsn}",
                        str(dump_dir),
                    ],
                    env=cluster.tool_env(),
                    on_line=on_line,
                )
            except ToolFailed as exc:
                restore_s = time.monotonic() - t0
                msg = f"pg_restore failed: {exc.last_error}"
                v = _result(m, started, restore_s, str(inst), [msg], msg)
                catalogue.record(v)
                return v
            restore_s = time.monotonic() - t0
            if observer is not None:
                observer(
                    BackupProgress(
                        phase="check", done=0, total=len(m.tables), item="comparing checksums"
                    )
                )
            problems = compare_database(dsn, m)
        message = "restored and matched" if not problems else problems[0]
        v = _result(m, started, restore_s, str(inst), problems, message)
        catalogue.record(v)
        return v
