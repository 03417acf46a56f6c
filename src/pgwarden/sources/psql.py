"""psql meta-commands (`\\set ON_ERROR_STOP on`) in SQL files run with `psql -f`.

psql runs them itself; the server never sees them. Those that only set psql's own
state (variables, output, echo) are blanked out, keeping every position of the file,
so the file is linted and applied as the SQL it sends. Those that change what runs or
where (`\\connect`, `\\i`, `\\copy`, `\\gexec`, `\\if`, `\\q`, ...) are refused: pgwarden
cannot run or analyse the file as psql would.
"""

from __future__ import annotations

import re
from typing import NoReturn

from pgwarden.errors import UnreadableSql
from pgwarden.location import SourceLocation, line_col
from pgwarden.sources.sqlscan import segments

__all__ = ["blank_meta_commands"]

# A meta-command: a backslash, its name, its arguments to the end of the line.
_META = re.compile(r"\\(?P<name>[A-Za-z_!?][A-Za-z_]*|\.|)")
# The end of inline COPY ... FROM stdin data, on a line of its own (the data before it is
# not SQL, so it is found by line, not by the lexer).
_COPY_END = re.compile(r"^\\\.[ \t\r]*$", re.MULTILINE)
# Meta-commands that only change psql's own state: output, variables, echo, timing.
_HARMLESS = frozenset(
    {
        "set", "unset", "echo", "qecho", "warn", "timing", "pset", "encoding", "prompt",
        "conninfo", "errverbose", "setenv", "o", "out", "a", "t", "x", "H", "C", "f", "T",
    }
)  # fmt: skip


def blank_meta_commands(text: str, path: str) -> tuple[str, tuple[str, ...]]:
    """`text` with the harmless meta-commands blanked (same length, positions kept), and
    those commands; UnreadableSql (an InputError) for one that changes what runs or where.

    A meta-command is a backslash in code (not in a literal, a quoted identifier, a
    comment or a dollar-quoted body, as psql reads it) and the rest of its line: at the
    start of a line or after a query (`SELECT ... \\gexec`).
    """
    if "\\" not in text:
        return text, ()
    copy_end = _COPY_END.search(text)
    if copy_end is not None:
        _refuse(text, path, copy_end.start(), ".")
    found: list[str] = []
    out: list[str] = []
    last = 0
    for kind, a, b in segments(text):
        if kind != "meta":
            continue
        m = _META.match(text, a)
        name = m.group("name") if m is not None else ""
        if name not in _HARMLESS:
            _refuse(text, path, a, name)
        found.append(text[a:b].strip())
        out.append(text[last:a])
        out.append(" " * (b - a))
        last = b
    out.append(text[last:])
    return "".join(out), tuple(found)


def _refuse(text: str, path: str, at: int, name: str) -> NoReturn:
    line, col = line_col(text, at)
    what = (
        "the end of COPY ... FROM stdin data: pgwarden does not send inline COPY data"
        if name == "."
        else f"psql meta-command \\{name}: pgwarden runs and analyses the SQL a file "
        "sends to the server, and this one changes what psql runs or where"
    )
    raise UnreadableSql(
        what,
        SourceLocation(path, line, col),
        hint="keep migrations to SQL (psql's \\set, \\echo and the like are ignored); "
        "run this step with psql itself",
    )
