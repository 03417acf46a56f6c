"""The catalogue: backups (manifest + dump + verification record) behind a small storage interface.

Local layout, one directory per backup:

    CATALOGUE/<id>/manifest.json      sealed, written once
    CATALOGUE/<id>/dump/              pg_dump directory format
    CATALOGUE/<id>/verification.json  sealed, replaced atomically by each verify
    CATALOGUE/.staging-<id>-<pid>/    a backup being written; renamed to <id> when complete

A backup directory appears under its final name only once everything in it is
written and synced, so nothing half-written is ever listed, let alone verified.
An object store needs the same six operations (`Storage`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pgwarden.backup.manifest import Manifest, Verification
from pgwarden.errors import EnvironmentProblem, InputError, UsageError
from pgwarden.pg.cluster import pid_alive

__all__ = ["BackupInfo", "Catalogue", "LocalStorage", "State", "Storage"]

MANIFEST = "manifest.json"
VERIFICATION = "verification.json"
DUMP = "dump"
_STAGING = ".staging-"

State = Literal["verified", "failed", "unverified", "damaged"]


class Storage(Protocol):
    """Where backups live. Dumps are handed to pg_restore as local directories."""

    location: str

    def backup_ids(self) -> list[str]: ...
    def read(self, backup_id: str, name: str) -> str | None: ...
    def write_atomic(self, backup_id: str, name: str, text: str) -> None: ...
    def staging(self, backup_id: str) -> contextlib.AbstractContextManager[Path]: ...
    def publish(self, staging: Path, backup_id: str) -> None: ...
    def dump_dir(self, backup_id: str) -> contextlib.AbstractContextManager[Path]: ...
    def delete(self, backup_id: str) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, text: str) -> None:
    """Write `text` to a temp name beside `path`, fsync, rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class LocalStorage:
    """A catalogue in a local (or mounted) directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def _dir(self, backup_id: str) -> Path:
        if not backup_id or "/" in backup_id or backup_id.startswith("."):
            raise UsageError(f"invalid backup id {backup_id!r}")
        return self.root / backup_id

    def backup_ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise UsageError(f"catalogue {self.root} is not a directory") from None
        return sorted(n for n in names if not n.startswith(".") and (self.root / n).is_dir())

    def read(self, backup_id: str, name: str) -> str | None:
        try:
            return (self._dir(backup_id) / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{self._dir(backup_id) / name}: cannot read: {exc}") from None

    def write_atomic(self, backup_id: str, name: str, text: str) -> None:
        try:
            write_file_atomic(self._dir(backup_id) / name, text)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot write {self._dir(backup_id) / name}: {exc.strerror or exc}",
                hint="check free space and permissions of the catalogue directory",
            ) from None

    @contextlib.contextmanager
    def staging(self, backup_id: str) -> Iterator[Path]:
        """A fresh directory to build the backup in; removed unless published."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.sweep()
            path = self.root / f"{_STAGING}{self._dir(backup_id).name}-{os.getpid()}"
            path.mkdir()
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot create a backup in {self.root}: {exc.strerror or exc}",
                hint="check that the catalogue directory is writable and has free space",
            ) from None
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, staging: Path, backup_id: str) -> None:
        final = self._dir(backup_id)
        try:
            for dirpath, _dirs, _files in os.walk(staging):
                _fsync_dir(Path(dirpath))
            os.rename(staging, final)
            _fsync_dir(self.root)
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot publish backup {backup_id} in {self.root}: {exc.strerror or exc}",
                hint="nothing was recorded; check the catalogue directory",
            ) from None

    @contextlib.contextmanager
    def dump_dir(self, backup_id: str) -> Iterator[Path]:
        path = self._dir(backup_id) / DUMP
        if not path.is_dir():
            raise InputError(
                f"backup {backup_id}: dump directory {path} is missing",
                hint="the backup is incomplete; restore from another one",
            )
        yield path

    def delete(self, backup_id: str) -> None:
        """Remove a backup: rename it away first so it vanishes from listings at once."""
        src = self._dir(backup_id)
        doomed = self.root / f".deleting-{backup_id}-{os.getpid()}"
        os.rename(src, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def sweep(self, min_age_s: float = 60.0) -> list[str]:
        """Remove staging/deleting directories left by processes that are gone."""
        removed: list[str] = []
        try:
            names = os.listdir(self.root)
        except OSError:
            return removed
        for name in names:
            if not name.startswith((_STAGING, ".deleting-")):
                continue
            path = self.root / name
            try:
                pid = int(name.rsplit("-", 1)[1])
                young = time.time() - path.stat().st_mtime < min_age_s
            except (ValueError, IndexError, OSError):
                continue
            if pid_alive(pid) or (pid == os.getpid() and young):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        return removed


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """A backup as the catalogue sees it: manifest, latest verification, and state."""

    id: str
    manifest: Manifest | None
    verification: Verification | None
    state: State
    problem: str | None = None

    @property
    def verified(self) -> bool:
        return self.state == "verified"


class Catalogue:
    """Read and record backups in a `Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @classmethod
    def local(cls, path: str | os.PathLike[str]) -> Catalogue:
        return cls(LocalStorage(path))

    @property
    def location(self) -> str:
        return self.storage.location

    def manifest(self, backup_id: str) -> Manifest:
        """The manifest of `backup_id`; InputError when missing or damaged."""
        where = f"backup {backup_id}: {MANIFEST}"
        text = self.storage.read(backup_id, MANIFEST)
        if text is None:
            raise InputError(f"{where} is missing", hint="the backup is incomplete")
        m = Manifest.from_json(text, where=where)
        if m.id != backup_id:
            raise InputError(f"{where} describes backup {m.id}, not {backup_id}")
        return m

    def info(self, backup_id: str) -> BackupInfo:
        """State of one backup; never raises for a damaged one."""
        try:
            m = self.manifest(backup_id)
        except InputError as exc:
            return BackupInfo(backup_id, None, None, "damaged", exc.message)
        text = self.storage.read(backup_id, VERIFICATION)
        if text is None:
            return BackupInfo(backup_id, m, None, "unverified")
        where = f"backup {backup_id}: {VERIFICATION}"
        try:
            v = Verification.from_json(text, where=where)
        except InputError as exc:
            return BackupInfo(backup_id, m, None, "damaged", exc.message)
        if v.backup_id != backup_id or v.manifest_sha256 != m.checksum_sha256:
            msg = f"{where} belongs to another manifest than the one in the catalogue"
            return BackupInfo(backup_id, m, None, "damaged", msg)
        return BackupInfo(backup_id, m, v, "verified" if v.ok else "failed", v.message or None)

    def entries(self) -> list[BackupInfo]:
        """Every backup, oldest first (damaged ones, whose time is unknown, first)."""
        infos = [self.info(i) for i in self.storage.backup_ids()]
        return sorted(
            infos, key=lambda b: (b.manifest is not None, b.manifest and b.manifest.ended_at, b.id)
        )

    def resolve(self, id_or_prefix: str) -> str:
        """The full id for an id or a unique prefix of one."""
        ids = self.storage.backup_ids()
        if id_or_prefix in ids:
            return id_or_prefix
        hits = [i for i in ids if i.startswith(id_or_prefix)]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise UsageError(
                f"no backup {id_or_prefix!r} in {self.location}",
                hint="`pgwarden backup list` shows the ids",
            )
        raise UsageError(
            f"{id_or_prefix!r} matches {len(hits)} backups: {', '.join(hits[:5])}",
            hint="give more of the id",
        )

    def record(self, verification: Verification) -> None:
        """Store the outcome of a verification (atomically replacing the previous one)."""
        self.storage.write_atomic(verification.backup_id, VERIFICATION, verification.to_json())
