"""Placeholders in SQL files: Flyway's and Liquibase's (`${schema}`,
`${flyway:defaultSchema}`), psql's variables (`:schema`, `:"schema"`, `:'value'`) and Go
template actions (`{{ index .Options "Namespace" }}`, as golang tools such as pop/fizz
fill in before running a file).

The tool substitutes them before the server sees the SQL, so the file as written is not
valid SQL. pgwarden reads each one as the quoted identifier `"${name}"` (what it mostly
stands for: a schema, a table, a role), so the file parses and is linted; a placeholder
inside a string literal or a comment is left alone. A psql variable is read the same way,
`:s` and `:"s"` as the identifier `":s"`, `:'s'` as the literal `':s'`, only where psql
fills it in: in code, not inside literals, quoted identifiers, comments or dollar-quoted
bodies (a `::` cast is not one). A Go template action in code or in a dollar-quoted body
is read as the quoted identifier it mostly stands for (`"{{ .Schema }}"`, inner quotes
doubled). A table whose schema is a placeholder
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
from pgwarden.sources.sqlscan import DOLLAR_TAG, PLACEHOLDER, Kind, segments

__all__ = ["quote_placeholders", "refuse_placeholders"]


# A psql variable in code: `:name`, not part of a `::` cast; `:` at the end of a code span
# may open `:'name'` or `:"name"` (the quoted span that follows).
_PSQL_VAR = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_PSQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_placeholders(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each placeholder outside literals, identifiers and comments quoted as an
    identifier (a psql `:'variable'` as a literal), and the placeholders found (in order,
    once each)."""
    templates: tuple[str, ...] = ()
    if "{{" in text:
        text, templates = _go_templates(text)
    if ":" in text:
        text, psql = _psql_variables(text)
        psql = (*templates, *psql)
    else:
        psql = templates
    if "${" not in text:
        return text, psql
    out: list[str] = []
    found: dict[str, None] = dict.fromkeys(psql)

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


# A Go text/template action: `{{` to the first `}}`, on any number of lines.
_GO_ACTION = re.compile(r"\{\{.*?\}\}", re.S)


def _go_templates(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with each Go template action in code or a dollar-quoted body read as a
    quoted identifier, and the actions found. Its own quotes (`"Namespace"`) would read as
    identifiers, so the text is split again after each one."""
    found: dict[str, None] = {}
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        action = _GO_ACTION.match(text, start) if _in_code(text, start) else None
        if action is None:
            pos = start + 2
            continue
        found[action.group(0)] = None
        quoted = '"' + action.group(0).replace('"', '""') + '"'
        text = text[:start] + quoted + text[action.end() :]
        pos = start + len(quoted)
    return text, tuple(found)


def _in_code(text: str, at: int) -> bool:
    """Whether `at` is in code: at the top or in a dollar-quoted body (SQL too)."""
    kind, a, b = next(span for span in segments(text) if span[1] <= at < span[2])
    if kind != "dollar":
        return kind == "code"
    tag = DOLLAR_TAG.match(text, a)
    assert tag is not None
    t = len(tag.group(0))
    return a + t <= at and _in_code(text[a + t : b], at - a - t)


def _psql_variables(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` with psql's variables read as identifiers or literals, and those found."""
    spans: list[tuple[Kind, int, int]] = list(segments(text))
    out: list[str] = []
    found: dict[str, None] = {}

    def quote(m: re.Match[str]) -> str:
        found[m.group(0)] = None
        return f'":{m.group(1)}"'

    skip = -1  # a quoted span already read as the variable's name
    for i, (kind, a, b) in enumerate(spans):
        if i == skip:
            continue
        if kind != "code":
            out.append(text[a:b])
            continue
        code = _PSQL_VAR.sub(quote, text[a:b])
        nxt = spans[i + 1] if i + 1 < len(spans) else None
        if (
            nxt is not None
            and nxt[0] == "quoted"
            and code.endswith(":")
            and not code.endswith("::")
            and _PSQL_NAME.fullmatch(text, nxt[1] + 1, nxt[2] - 1)
            and text[nxt[2] - 1] == text[nxt[1]]
        ):
            q, name = text[nxt[1]], text[nxt[1] + 1 : nxt[2] - 1]
            found[f":{q}{name}{q}"] = None
            code = code[:-1] + f"{q}:{name}{q}"
            skip = i + 1
        out.append(code)
    return "".join(out), tuple(found)


def refuse_placeholders(texts: Iterable[tuple[str, tuple[str, ...]]], command: str) -> None:
    """InputError when a source (path, placeholders) holds placeholders: `command` runs the
    SQL as written, and pgwarden does not know their values."""
    for path, names in texts:
        if names:
            raise InputError(
                f"{path}: holds placeholders ({', '.join(names)}) that Flyway, Liquibase, "
                f"psql or a Go template substitutes; pgwarden {command} runs SQL as written "
                "and does not know their values",
                hint=f"{command} a copy with the values filled in, or run the migration with "
                "its own tool (pgwarden lint reads placeholders as identifiers)",
                path=path,
            )
