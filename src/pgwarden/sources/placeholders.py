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
from pgwarden.sources.sqlscan import DOLLAR_TAG, PLACEHOLDER, segments

__all__ = ["quote_placeholders", "refuse_placeholders"]


def quote_placeholders(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each placeholder outside literals, identifiers and comments quoted as an
    identifier, and the placeholders found (in order, once each)."""
    if "${" not in text:
        return text, ()
    out: list[str] = []
    found: dict[str, None] = {}

    def quote(m: re.Match[str]) -> str:
        found[m.group(0)] = None
        return f'"{m.group(0)}"'

    for kind, a, b in segments(text):
        if kind == "code":
            out.append(PLACEHOLDER.sub(quote, text[a:b]))
        elif kind == "dollar":
            # a dollar-quoted body is SQL too (a DO block, a function): placeholders in it
            # are quoted the same way
            tag = DOLLAR_TAG.match(text, a)
            assert tag is not None
            t = len(tag.group(0))
            closed = b - a >= 2 * t and text.endswith(tag.group(0), a, b)
            inner_end = b - t if closed else b
            inner, names = quote_placeholders(text[a + t : inner_end])
            found.update(dict.fromkeys(names))
            out.append(text[a : a + t] + inner + text[inner_end:b])
        else:
            out.append(text[a:b])
    return "".join(out), tuple(found)


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
