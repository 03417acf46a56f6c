"""`backup drill`: create, verify, prune; fail when the newest verified backup is too old.

Retention, per (system_identifier, database): keep the newest `keep` verified
backups; delete older verified ones beyond that, and failed or unverified ones
older than the newest verified backup. The backup just taken, damaged entries
(a human should look at them) and other databases' backups are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pgwarden.backup.catalogue import BackupInfo, Catalogue
from pgwarden.backup.dump import create_backup
from pgwarden.backup.manifest import Manifest, Verification, utc_now
from pgwarden.backup.verify import verify_backup
from pgwarden.errors import UsageError
from pgwarden.events import Observer

__all__ = ["DrillResult", "drill", "prune"]


@dataclass(frozen=True, slots=True)
class DrillResult:
    """What one drill did and whether the policy holds."""

    created: Manifest
    verification: Verification
    pruned: tuple[str, ...]
    newest_verified: BackupInfo | None
    newest_verified_age: timedelta | None
    max_age: timedelta

    @property
    def ok(self) -> bool:
        age = self.newest_verified_age
        return self.verification.ok and age is not None and age <= self.max_age


def prune(catalogue: Catalogue, m: Manifest, keep: int) -> tuple[str, ...]:
    """Apply the retention policy to backups of `m`'s database; the ids deleted."""
    if keep < 1:
        raise UsageError("--keep must be at least 1")
    same = [
        b
        for b in catalogue.entries()
        if b.manifest is not None
        and b.manifest.system_identifier == m.system_identifier
        and b.manifest.database == m.database
        and b.state != "damaged"
    ]
    verified = sorted(
        (b for b in same if b.verified),
        key=lambda b: b.manifest.ended_at if b.manifest else m.ended_at,
        reverse=True,
    )
    doomed = [b.id for b in verified[keep:] if b.id != m.id]
    if verified and verified[0].manifest is not None:
        newest = verified[0].manifest.ended_at
        doomed += [
            b.id
            for b in same
            if not b.verified
            and b.id != m.id
            and b.manifest is not None
            and b.manifest.ended_at < newest
        ]
    for backup_id in doomed:
        catalogue.storage.delete(backup_id)
    return tuple(sorted(doomed))


def newest_verified(
    catalogue: Catalogue, system_identifier: int, database: str
) -> BackupInfo | None:
    """The verified backup of (system, database) with the latest end, if any."""
    best = None
    for b in catalogue.entries():  # oldest first
        bm = b.manifest
        if (
            b.verified
            and bm is not None
            and (bm.system_identifier, bm.database)
            == (
                system_identifier,
                database,
            )
        ):
            best = b
    return best


def drill(
    dsn: str,
    catalogue: Catalogue,
    *,
    jobs: int = 2,
    keep: int = 7,
    max_age: timedelta = timedelta(hours=26),
    observer: Observer | None = None,
) -> DrillResult:
    """One scheduled run: take a backup, prove it by restoring it, apply retention."""
    if keep < 1:
        raise UsageError("--keep must be at least 1")
    m = create_backup(dsn, catalogue, jobs=jobs, observer=observer)
    v = verify_backup(catalogue, m.id, jobs=jobs, observer=observer)
    pruned = prune(catalogue, m, keep)
    newest = newest_verified(catalogue, m.system_identifier, m.database)
    age = utc_now() - newest.manifest.ended_at if newest and newest.manifest else None
    return DrillResult(m, v, pruned, newest, age, max_age)
