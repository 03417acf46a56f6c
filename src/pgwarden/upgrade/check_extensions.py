"""Extensions and C libraries: does the target installation ship what the source uses?

Read from the target binaries' own directories (`pg_config --sharedir
--pkglibdir` of the target installation): an extension needs its control
file there; pg_upgrade also loads every shared library that a C function of
the source names (`pg_proc.probin`) and stops when one is missing; the
logical route runs CREATE EXTENSION on the new server, so it needs a script
for the installed version or an update path to it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg

from pgwarden.errors import EnvironmentProblem
from pgwarden.pg.binaries import Installation
from pgwarden.upgrade.check import BOTH, Conn, Issue, Severity, new_issue, rows

__all__ = ["TargetFiles", "extension_issues", "target_files"]

_DEFAULT_VERSION = re.compile(r"^\s*default_version\s*=\s*'([^']*)'", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TargetFiles:
    """Where a target installation keeps extensions and libraries."""

    sharedir: Path
    pkglibdir: Path
    has_icu: bool

    def control(self, extension: str) -> Path:
        return self.sharedir / "extension" / f"{extension}.control"

    def scripts(self, extension: str) -> list[str]:
        """Script file names of `extension` (install and update scripts)."""
        folder = self.sharedir / "extension"
        return sorted(p.name for p in folder.glob(f"{extension}--*.sql"))

    def library(self, probin: str) -> Path | None:
        """The file pg_upgrade would load for a `probin` value, or None when absent."""
        name = probin.replace("$libdir/", "").replace("$libdir", "")
        base = Path(name) if name.startswith("/") else self.pkglibdir / name
        for candidate in (base, base.with_name(base.name + ".so")):
            if candidate.is_file():
                return candidate
        return None


@cache
def target_files(inst: Installation) -> TargetFiles:
    """The target installation's extension and library directories."""
    pg_config = inst.tool("pg_config")
    try:
        out = subprocess.run(
            [str(pg_config), "--sharedir", "--pkglibdir"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split("\n")
        sharedir, pkglibdir = Path(out[0].strip()), Path(out[1].strip())
    except (OSError, subprocess.SubprocessError, IndexError):
        raise EnvironmentProblem(
            f"cannot read the directories of {inst} (pg_config --sharedir --pkglibdir failed)",
            hint="install the target major's complete server package (pg_config included)",
        ) from None
    try:
        has_icu = b"libicuuc" in inst.tool("postgres").read_bytes()
    except OSError:
        has_icu = False
    return TargetFiles(sharedir, pkglibdir, has_icu)


def _versions(scripts: list[str], name: str) -> tuple[set[str], dict[str, set[str]]]:
    """(versions with an install script, update edges) from an extension's script names."""
    installs: set[str] = set()
    updates: dict[str, set[str]] = {}
    prefix = f"{name}--"
    for script in scripts:
        parts = script[len(prefix) : -len(".sql")].split("--")
        if len(parts) == 1:
            installs.add(parts[0])
        elif len(parts) == 2:
            updates.setdefault(parts[0], set()).add(parts[1])
    return installs, updates


def _closure(start: set[str], updates: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in updates.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _reachable(scripts: list[str], name: str, version: str) -> bool:
    """Whether CREATE EXTENSION name VERSION version can run from these scripts."""
    installs, updates = _versions(scripts, name)
    return version in _closure(installs, updates)


def _updatable(scripts: list[str], name: str, version: str, to: str) -> bool:
    """Whether ALTER EXTENSION name UPDATE TO `to` can run from `version`."""
    _installs, updates = _versions(scripts, name)
    return to in _closure({version}, updates)


def extension_issues(conn: Conn, target: Installation) -> list[Issue]:
    """Extensions and C libraries of the source that the target installation lacks."""
    files = target_files(target)
    out: list[Issue] = []
    missing: list[str] = []
    other_version: list[str] = []
    updates: list[str] = []
    for name, version in rows(
        conn, "SELECT extname::text, extversion FROM pg_extension ORDER BY 1"
    ):
        ext, installed = str(name), str(version)
        control = files.control(ext)
        if not control.is_file():
            missing.append(f"{ext} {installed}")
            continue
        try:
            text = control.read_text(errors="replace")
        except OSError:
            text = ""
        m = _DEFAULT_VERSION.search(text)
        default = m.group(1) if m else None
        scripts = files.scripts(ext)
        if not _reachable(scripts, ext, installed):
            other_version.append(f"{ext} {installed} (target ships {default or '?'})")
        if default is not None and default != installed:
            how = "" if _updatable(scripts, ext, installed, default) else " (no update path)"
            updates.append(f"{ext} {installed} -> {default}{how}")
    if missing:
        out.append(
            new_issue(
                "extension-missing",
                Severity.BLOCKER,
                BOTH,
                f"{len(missing)} installed extension(s) are not shipped by the target "
                f"binaries (PostgreSQL {target.major}: {files.sharedir / 'extension'})",
                "install the extension's package for the target major on the target host, "
                "or DROP EXTENSION it if nothing uses it (some contrib modules were removed, "
                "e.g. adminpack in 17)",
                missing,
            )
        )
    if other_version:
        out.append(
            new_issue(
                "extension-version",
                Severity.WARNING,
                ("logical",),
                f"{len(other_version)} extension(s) cannot be created at their installed "
                "version on the target (no script or update path to it): the logical route "
                "creates them at the target's version, whose objects may differ",
                "ALTER EXTENSION ... UPDATE on the source first, to a version the target ships",
                other_version,
            )
        )
    if updates:
        out.append(
            new_issue(
                "extension-update",
                Severity.NOTE,
                ("pg_upgrade",),
                f"{len(updates)} extension(s) keep their old version after pg_upgrade; "
                "the target ships newer ones",
                "run ALTER EXTENSION ... UPDATE in each database after the upgrade",
                updates,
            )
        )
    libraries: dict[str, list[str]] = {}
    for probin, proc in rows(
        conn,
        "SELECT p.probin, p.oid::regprocedure::text FROM pg_proc p "
        "JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'c' "
        "WHERE p.probin IS NOT NULL AND p.oid >= 16384 "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
        "  AND d.objid = p.oid AND d.deptype = 'e') ORDER BY 2",
    ):
        if files.library(str(probin)) is None:
            libraries.setdefault(str(probin), []).append(str(proc))
    if libraries:
        out.append(
            new_issue(
                "library-missing",
                Severity.BLOCKER,
                BOTH,
                f"{len(libraries)} shared librar(y/ies) used by C functions are missing from "
                f"the target ({files.pkglibdir}): pg_upgrade stops, and the functions would "
                "fail on the new server",
                "build and install the library for the target major, or drop the functions",
                [f"{lib}: {', '.join(procs[:3])}" for lib, procs in libraries.items()],
            )
        )
    try:
        with conn.transaction():
            setting = str(rows(conn, "SHOW shared_preload_libraries")[0][0])
    except psycopg.errors.InsufficientPrivilege:
        setting = ""  # readable only with pg_read_all_settings: not judged
    preload = [lib.strip() for lib in setting.split(",") if lib.strip()]
    absent = [lib for lib in preload if files.library(f"$libdir/{lib}") is None]
    if absent:
        out.append(
            new_issue(
                "preload-missing",
                Severity.BLOCKER,
                BOTH,
                f"shared_preload_libraries names {len(absent)} librar(y/ies) the target lacks: "
                "the new server would not start with the same configuration",
                "install them for the target major, or remove them from its configuration",
                absent,
            )
        )
    return out
