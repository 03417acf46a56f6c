"""The typed entry points of `pgwarden backup`: they return results and never print.

The CLI and library users (the apply guard among them) call the same functions.
Every time they take or return is aware and in UTC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pgwarden.backup import drill as _drill
from pgwarden.backup import pgbackrest as _pgbackrest
from pgwarden.backup.catalogue import BackupInfo, Catalogue
from pgwarden.backup.dump import create_backup
from pgwarden.backup.manifest import Manifest, Verification, parse_aware
from pgwarden.backup.restore import (
    RestoreResult,
    Target,
    check_environment,
    describe_target,
    restore_backup,
    select_backup,
)
from pgwarden.backup.verify import check_files, verify_backup
from pgwarden.errors import InputError, UsageError
from pgwarden.events import Observer
from pgwarden.settings import Settings, load_settings

__all__ = [
    "RestorePlan",
    "create",
    "drill",
    "list_backups",
    "open_catalogue",
    "plan_restore",
    "restore",
    "verified_backup_since",
    "verify",
    "verify_pgbackrest",
]

CatalogueArg = Catalogue | str | os.PathLike[str] | None


def open_catalogue(
    catalogue: CatalogueArg = None, *, settings: Settings | None = None
) -> Catalogue:
    """A Catalogue object, a path, or None for `[tool.pgwarden.backup] catalogue`."""
    if isinstance(catalogue, Catalogue):
        return catalogue
    if catalogue is None:
        catalogue = (settings or load_settings()).backup_catalogue
    return Catalogue.local(Path(catalogue))


def create(
    database_url: str,
    *,
    catalogue: CatalogueArg = None,
    jobs: int = 2,
    observer: Observer | None = None,
) -> Manifest:
    """Take a consistent, checksummed backup; return its manifest."""
    _check_jobs(jobs)
    return create_backup(database_url, open_catalogue(catalogue), jobs=jobs, observer=observer)


def list_backups(catalogue: CatalogueArg = None) -> list[BackupInfo]:
    """Every backup in the catalogue with its state, oldest first."""
    return open_catalogue(catalogue).entries()


def verify(
    backup_id: str | None,
    *,
    catalogue: CatalogueArg = None,
    jobs: int = 2,
    observer: Observer | None = None,
) -> Verification:
    """Restore a backup (None: the newest one) into a throwaway cluster and check it."""
    _check_jobs(jobs)
    cat = open_catalogue(catalogue)
    if backup_id is None:
        entries = [b for b in cat.entries() if b.manifest is not None]
        if not entries:
            raise UsageError(f"no backups in {cat.location}", hint="run `pgwarden backup create`")
        backup_id = entries[-1].id
    return verify_backup(cat, cat.resolve(backup_id), jobs=jobs, observer=observer)


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """The backup chosen for TIME, what it misses, and where it would go."""

    backup: BackupInfo
    manifest: Manifest
    at: datetime
    target: Target
    catalogue: Catalogue
    damaged: tuple[BackupInfo, ...] = ()  # unreadable manifests: not considered

    @property
    def gap(self) -> timedelta:
        """From the backup's snapshot to TIME: data written then is not in the backup."""
        return self.at - self.manifest.snapshot_at

    @property
    def estimated_restore_seconds(self) -> float | None:
        v = self.backup.verification
        return v.restore_seconds if v is not None else None


def _resolve_system(entries: list[BackupInfo], given: str) -> int:
    systems = {b.manifest.system_identifier for b in entries if b.manifest is not None}
    hits = [s for s in systems if str(s).startswith(given.strip())]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UsageError(
            f"--from-system {given}: no backups of such a system in the catalogue",
            hint="`pgwarden backup list` shows the system identifiers",
        )
    raise UsageError(f"--from-system {given} matches {len(hits)} systems; give more digits")


def plan_restore(
    at: datetime | str,
    target_url: str,
    *,
    catalogue: CatalogueArg = None,
    from_system: str | None = None,
    database: str | None = None,
    env: str | None = None,
    settings: Settings | None = None,
) -> RestorePlan:
    """Choose the backup for TIME and check the target; restores nothing."""
    when = parse_aware(at, what="TIME") if isinstance(at, str) else _aware(at, "TIME")
    settings = settings or load_settings()
    cat = open_catalogue(catalogue, settings=settings)
    target = describe_target(target_url)
    check_environment(target, env, settings)
    entries = cat.entries()
    sysid = (
        _resolve_system(entries, from_system) if from_system else target.identity.system_identifier
    )
    chosen = select_backup(entries, sysid, database or target.identity.database, when)
    assert chosen.manifest is not None
    damaged = tuple(b for b in entries if b.manifest is None)
    return RestorePlan(chosen, chosen.manifest, when, target, cat, damaged)


def restore(
    plan: RestorePlan,
    *,
    jobs: int = 2,
    clean: bool = False,
    no_owner: bool = False,
    observer: Observer | None = None,
) -> RestoreResult:
    """Restore the planned backup into its target and compare checksums."""
    _check_jobs(jobs)
    return restore_backup(
        plan.catalogue,
        plan.backup.id,
        plan.target,
        jobs=jobs,
        clean=clean,
        no_owner=no_owner,
        observer=observer,
    )


def drill(
    database_url: str,
    *,
    catalogue: CatalogueArg = None,
    jobs: int = 2,
    keep: int = 7,
    max_age: timedelta = timedelta(hours=26),
    observer: Observer | None = None,
) -> _drill.DrillResult:
    """Create + verify + prune; `.ok` is False when the newest verified backup is too old."""
    _check_jobs(jobs)
    return _drill.drill(
        database_url,
        open_catalogue(catalogue),
        jobs=jobs,
        keep=keep,
        max_age=max_age,
        observer=observer,
    )


def verified_backup_since(
    catalogue: CatalogueArg,
    system_identifier: int,
    newer_than: datetime,
    *,
    database: str | None = None,
) -> BackupInfo | None:
    """The newest verified backup of `system_identifier` (and `database`, if given) whose
    snapshot was taken after `newer_than`, or None.

    For guards before destructive steps. Cheap: reads manifests and verification
    records and checks that every dump file is present with its recorded size
    (full SHA-256 checks happen in verify and restore).
    """
    since = _aware(newer_than, "newer_than")
    cat = open_catalogue(catalogue)
    for b in reversed(cat.entries()):  # newest first
        m = b.manifest
        if not b.verified or m is None or m.system_identifier != system_identifier:
            continue
        if (database is not None and m.database != database) or m.snapshot_at <= since:
            continue
        try:
            with cat.storage.dump_dir(b.id) as dump_dir:
                if check_files(m.files, dump_dir, sizes_only=True):
                    continue
        except InputError:
            continue
        return b
    return None


def verify_pgbackrest(
    stanza: str,
    set_label: str | None,
    *,
    catalogue: CatalogueArg = None,
    config: str | None = None,
    pg_major: int | None = None,
) -> _pgbackrest.PgBackRestResult:
    """Restore a pgBackRest backup set into a throwaway cluster and read every table."""
    return _pgbackrest.verify_set(
        stanza, set_label, open_catalogue(catalogue), config=config, pg_major=pg_major
    )


def _aware(t: datetime, what: str) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise UsageError(
            f"{what} {t.isoformat()} has no UTC offset",
            hint="pass an aware datetime, e.g. datetime(2024, 2, 21, 4, 55, tzinfo=UTC)",
        )
    return t


def _check_jobs(jobs: int) -> None:
    if not 1 <= jobs <= 64:
        raise UsageError(f"--jobs must be between 1 and 64, got {jobs}")
