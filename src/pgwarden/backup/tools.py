"""Running pg_dump / pg_restore: the right version, killed with pgwarden on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Sequence

from pgwarden.errors import PostgresNotFound
from pgwarden.pg.binaries import Installation, find_installation, find_installations

__all__ = ["ToolFailed", "installation_for", "run_tool", "tool_version"]

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\S+)")


class ToolFailed(Exception):
    """A client program exited non-zero; carries its stderr tail."""

    def __init__(self, program: str, code: int, stderr: str) -> None:
        super().__init__(f"{program} exited with code {code}")
        self.program = program
        self.code = code
        self.stderr = stderr

    @property
    def last_error(self) -> str:
        """The most telling line of stderr."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower() or "could not" in ln.lower()]
        return (errors or lines or [f"{self.program} exited with code {self.code}"])[0]


def installation_for(major: int) -> Installation:
    """The installation whose major is the smallest one >= `major` (client tools are
    backward compatible, never forward)."""
    if os.environ.get("PGWARDEN_PG_BINDIR"):
        inst = find_installation()
        if inst.major >= major:
            return inst
    candidates = sorted(
        (i for i in find_installations() if i.major >= major), key=lambda i: i.major
    )
    if not candidates:
        have = ", ".join(str(i) for i in find_installations()) or "none"
        raise PostgresNotFound(
            f"no PostgreSQL {major} or newer client tools found (found: {have})",
            hint=f"install PostgreSQL {major}'s client and server packages, or "
            "`pip install 'pgwarden[server]'`, or set PGWARDEN_PG_BINDIR",
        )
    return candidates[0]


def tool_version(inst: Installation, program: str) -> str:
    """The version a client program reports, e.g. '17.2'."""
    out = subprocess.run(
        [str(inst.tool(program)), "--version"], capture_output=True, text=True, check=False
    ).stdout
    m = _VERSION_RE.search(out)
    return m.group(1) if m else out.strip()


def run_tool(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    user: int | None = None,
    group: int | None = None,
) -> str:
    """Run a program in its own process group, streaming stderr lines to `on_line`.

    On any exception (Ctrl-C included) the whole group is killed and reaped before
    the exception propagates. Raises ToolFailed on a non-zero exit; returns stderr.
    """
    proc = subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
        user=user,
        group=group,
        extra_groups=[] if user is not None else None,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if len(lines) > 2000:
                del lines[:1000]
            if on_line is not None:
                on_line(line.rstrip("\n"))
        code = proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        if proc.stderr is not None:
            proc.stderr.close()
    stderr = "".join(lines)
    if code != 0:
        raise ToolFailed(os.path.basename(args[0]), code, stderr)
    return stderr
