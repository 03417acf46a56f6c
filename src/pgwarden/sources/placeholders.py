"""Flyway and Liquibase placeholders (`${schema}`, `${flyway:defaultSchema}`) in SQL files.

The tool substitutes them before the server sees the SQL, so the file as written is not
valid SQL. pgwarden reads each one as the quoted identifier `"${name}"` (what it mostly
stands for: a schema, a table, a role), so the file parses and is linted; a placeholder
inside a string literal or a comment is left alone. A table whose schema is a placeholder
(`${schema}.orders`) is the stats snapshot's only table of that name, and findings say
which schema they took (`Snapshot.table`); with the name in several schemas, or a table
named through a placeholder, it is not found in the snapshot, nor in the catalog by the
lock model. `apply` and `rehearse` run SQL as written,
so they refuse such files (see `refuse_placeholders`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pgwarden.errors import InputError

__all__ = ["quote_placeholders", "refuse_placeholders"]

_PLACEHOLDER = re.compile(r"\$\{[^}\s\"']+\}")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def quote_placeholders(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each placeholder outside literals, identifiers and comments quoted as an
    identifier, and the placeholders found (in order, once each)."""
    if "${" not in text:
        return text, ()
    out: list[str] = []
    found: dict[str, None] = {}
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "$":
            m = _PLACEHOLDER.match(text, i)
            if m is not None:
                found[m.group(0)] = None
                out.append(f'"{m.group(0)}"')
                i = m.end()
                continue
            tag = _DOLLAR_TAG.match(text, i)
            if tag is not None and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                # a dollar-quoted body is SQL too (a DO block, a function): placeholders
                # in it are quoted the same way
                end = text.find(tag.group(0), tag.end())
                end = n if end < 0 else end
                inner, names = quote_placeholders(text[tag.end() : end])
                found.update(dict.fromkeys(names))
                out.append(tag.group(0) + inner + text[end : end + len(tag.group(0))])
                i = end + len(tag.group(0))
                continue
            out.append(c)
            i += 1
        elif c == "'" or c == '"':
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                if c == "'" and text[j] == "\\" and _escaped(text, i):
                    j += 2
                    continue
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
        elif text.startswith("/*", i):
            j, depth = i + 2, 1
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(text[i:j])
            i = j
        else:
            j = i + 1
            while j < n and text[j] not in "$'\"-/":
                j += 1
            out.append(text[i:j])
            i = j
    return "".join(out), tuple(found)


def _escaped(text: str, quote: int) -> bool:
    """Whether the literal opening at `quote` is an E'...' string (backslash escapes)."""
    return quote > 0 and text[quote - 1] in "eE" and (quote < 2 or not text[quote - 2].isalnum())


def refuse_placeholders(texts: Iterable[tuple[str, tuple[str, ...]]], command: str) -> None:
    """InputError when a source (path, placeholders) holds placeholders: `command` runs the
    SQL as written, and pgwarden does not know their values."""
    for path, names in texts:
        if names:
            raise InputError(
                f"{path}: holds placeholders ({', '.join(names)}) that Flyway or Liquibase "
                f"substitutes; pgwarden {command} runs SQL as written and does not know their "
                "values",
                hint=f"{command} a copy with the values filled in, or run the migration with "
                "its own tool (pgwarden lint reads placeholders as identifiers)",
                path=path,
            )
