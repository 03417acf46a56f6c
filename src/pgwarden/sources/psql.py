"""psql meta-commands (`\\set ON_ERROR_STOP on`) in SQL files run with `psql -f`.

psql runs them itself; the server never sees them. Those that only set psql's own
state (variables, output, echo) are blanked out, keeping every position of the file,
so the file is linted and applied as the SQL it sends. Those that change what runs or
where (`\\connect`, `\\i`, `\\copy`, `\\gexec`, `\\if`, `\\q`, ...) are refused: pgwarden
cannot run or analyse the file as psql would.
"""

from __future__ import annotations

import re

from pgwarden.errors import InputError

__all__ = ["blank_meta_commands"]

# A line that is a meta-command: a backslash then its name, at the start of the line.
_META = re.compile(r"^[ \t]*\\(?P<name>[A-Za-z_!?][A-Za-z_]*|\.)(?P<rest>[^\n]*)$", re.MULTILINE)
# Meta-commands that only change psql's own state: output, variables, echo, timing.
_HARMLESS = frozenset(
    {
        "set", "unset", "echo", "qecho", "warn", "timing", "pset", "encoding", "prompt",
        "conninfo", "errverbose", "setenv", "o", "out", "a", "t", "x", "H", "C", "f", "T",
    }
)  # fmt: skip


def blank_meta_commands(text: str, path: str) -> tuple[str, tuple[str, ...]]:
    """`text` with the harmless meta-command lines blanked (same length, positions kept),
    and those commands; InputError for one that changes what runs or where."""
    if "\\" not in text:
        return text, ()
    found: list[str] = []

    def blank(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in _HARMLESS:
            line = text.count("\n", 0, m.start()) + 1
            what = (
                "the end of COPY ... FROM stdin data: pgwarden does not send inline COPY data"
                if name == "."
                else f"psql meta-command \\{name}: pgwarden runs and analyses the SQL a file "
                "sends to the server, and this one changes what psql runs or where"
            )
            raise InputError(
                f"{path}:{line}: {what}",
                hint="keep migrations to SQL (psql's \\set, \\echo and the like are ignored); "
                "run this step with psql itself",
                path=path,
            )
        found.append(m.group(0).strip())
        return " " * len(m.group(0))

    return _META.sub(blank, text), tuple(found)
