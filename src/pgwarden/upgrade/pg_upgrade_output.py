"""What pg_upgrade says besides "ok": its warnings and notices, and the steps its
completion banner asks for.

pg_upgrade (16-18, seen from a 15 source) prints a status line per check; a
check that does not refuse but matters ends in `warning` or `notice`, followed
by a paragraph that may name a file (relative to the working directory, such as
`update_extensions.sql`, or absolute under `pg_upgrade_output.d`). After
"Upgrade Complete" it lists what to run next, each explanation followed by
indented commands:

    Checking for extension updates                                notice

    Your installation contains extensions that should be updated
    with the ALTER EXTENSION command.  The file
        update_extensions.sql
    when executed by psql by the database superuser will update
    these extensions.

    Upgrade Complete
    ----------------
    Optimizer statistics are not transferred by pg_upgrade.
    Once you start the new server, consider running:
        /usr/lib/postgresql/17/bin/vacuumdb -U postgres --all --analyze-in-stages

Files are read right after pg_upgrade exits (it runs with `--retain`, and the
clusters are throwaway), before anything removes them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Finding", "PostStep", "findings", "post_steps"]

_STATUS = re.compile(r"^(\S.*?)\s{2,}(ok|fatal|failed|warning|notice)\s*$", re.IGNORECASE)
_FILE = re.compile(r"^\s+(\S+\.(?:txt|sql|sh))\s*$")
_END = ("Upgrade Complete", "Performing Upgrade", "Performing Consistency Checks")
_MAX_FILE = 8000
_OID = re.compile(r"^\(oid=\d+\)\s*")
_ALTER_EXTENSION = re.compile(r'^ALTER EXTENSION "?((?:[^"]|"")+?)"? UPDATE;?$', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    """A check pg_upgrade passed with a warning or a notice, and what it listed."""

    code: str  # from the status line: "Checking for extension updates" -> extension-updates
    check: str
    level: str  # warning, notice
    message: str
    files: tuple[tuple[str, str], ...] = ()  # (name, content)
    objects: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "check": self.check,
            "level": self.level,
            "message": self.message,
            "files": [{"file": f, "content": c} for f, c in self.files],
            "objects": list(self.objects),
        }


@dataclass(frozen=True, slots=True)
class PostStep:
    """One thing pg_upgrade asks to do after the upgrade, with the exact commands."""

    why: str
    commands: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"why": self.why, "commands": list(self.commands)}


def _code(check: str) -> str:
    name = re.sub(r"^Checking (for )?", "", check.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "pg-upgrade"


def _read(name: str, cwd: Path) -> str | None:
    path = Path(name) if name.startswith("/") else cwd / name
    try:
        return path.read_text(errors="replace")[:_MAX_FILE]
    except OSError:
        return None


def _database(connect_line: str) -> str:
    """The database of a `\\connect` line (plain, or `-reuse-previous=on "dbname='x'"`)."""
    m = re.search(r"dbname='((?:[^']|'')*)'", connect_line)
    if m is not None:
        return m.group(1).replace("''", "'")
    return connect_line.split(None, 1)[1].strip().strip("'\"")


def _objects(name: str, text: str) -> list[str]:
    """The objects a report file lists: `database: line` (update_extensions.sql: the
    statements, `In database:` headers of the .txt reports)."""
    out: list[str] = []
    database = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("--"):
            continue
        if line.startswith("\\connect "):
            database = _database(line)
        elif line.startswith("In database:"):
            database = line.split(":", 1)[1].strip()
        else:
            line = _OID.sub("", line)  # the throwaway copy's OID means nothing elsewhere
            ext = _ALTER_EXTENSION.match(line)
            what = "extension " + ext.group(1).replace('""', '"') if ext else line
            out.append(f"{database}: {what}" if database else what)
    return out


def findings(lines: list[str], cwd: Path) -> tuple[Finding, ...]:
    """The checks that ended in `warning` or `notice`, with their paragraph and files."""
    found: list[Finding] = []
    for i, line in enumerate(lines):
        m = _STATUS.match(line)
        if m is None or m.group(2).lower() not in ("warning", "notice"):
            continue
        text: list[str] = []
        files: list[tuple[str, str]] = []
        for nxt in lines[i + 1 :]:
            if _STATUS.match(nxt) or nxt.strip() in _END:
                break
            if not nxt.strip():
                if text:
                    break
                continue
            f = _FILE.match(nxt)
            if f is not None:
                content = _read(f.group(1), cwd)
                name = Path(f.group(1)).name
                if content is not None:
                    files.append((name, content))
                text.append(name)
                continue
            text.append(nxt.strip())
        message = re.sub(r"\s+", " ", " ".join(text)).strip()
        objects = [o for name, content in files for o in _objects(name, content)]
        found.append(
            Finding(
                code=_code(m.group(1)),
                check=m.group(1).strip(),
                level=m.group(2).lower(),
                message=message,
                files=tuple(files),
                objects=tuple(objects),
            )
        )
    return tuple(found)


def _command(line: str, user: str) -> str:
    """A command as pg_upgrade printed it, without this machine's bindir and without the
    `-U` of the throwaway clusters' superuser."""
    try:
        words = shlex.split(line.strip())
    except ValueError:
        return line.strip()
    if words and words[0].startswith("/"):
        words[0] = Path(words[0]).name
    kept: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        if w == "-U" and user:
            skip = True
            continue
        kept.append(w)
    return shlex.join(kept)


def post_steps(
    lines: list[str], found: tuple[Finding, ...] = (), user: str = "postgres"
) -> tuple[PostStep, ...]:
    """What the completion banner asks for, then the statements of update_extensions.sql."""
    steps: list[PostStep] = []
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Upgrade Complete")
    except StopIteration:
        start = len(lines)
    why: list[str] = []
    commands: list[str] = []
    for raw in lines[start + 1 :]:
        if not raw.strip() or set(raw.strip()) == {"-"}:
            continue
        if raw.startswith((" ", "\t")):
            commands.append(_command(raw, user))
            continue
        if commands:
            steps.append(PostStep(" ".join(why).rstrip(":"), tuple(commands)))
            why, commands = [], []
        why.append(raw.strip())
    if commands:
        steps.append(PostStep(" ".join(why).rstrip(":"), tuple(commands)))
    for f in found:
        for name, content in f.files:
            if not name.endswith(".sql"):
                continue
            statements = []
            database = "postgres"
            for raw in content.splitlines():
                line = raw.strip()
                if line.startswith("\\connect "):
                    database = _database(line)
                elif line and not line.startswith("--"):
                    statements.append(shlex.join(["psql", "-d", database, "-c", line]))
            if statements:
                steps.append(PostStep(f.message, tuple(statements)))
    return tuple(steps)
