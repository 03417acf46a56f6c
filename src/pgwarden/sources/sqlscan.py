"""Where a SQL file's text is code, and where it is a literal, a quoted identifier, a
comment, a dollar-quoted body or a psql meta-command: for the readers that change code
only (placeholders, psql's meta-commands), as psql's own lexer tells them apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

__all__ = ["DOLLAR_TAG", "PLACEHOLDER", "Kind", "segments"]

Kind = Literal["code", "quoted", "comment", "dollar", "meta"]

PLACEHOLDER = re.compile(r"\$\{[^}\s\"']+\}")  # Flyway's and Liquibase's `${name}`
DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_PLAIN = re.compile(r"[^$'\"\-/\\]+")


def segments(text: str) -> Iterator[tuple[Kind, int, int]]:
    """(kind, start, end) spans covering `text` in order.

    `quoted`: a '...' literal (E'...' with backslash escapes) or a "..." identifier;
    `dollar`: a body with its tags ($$...$$, $f$...$f$); `comment`: -- to the end of the
    line or a nested /* */; `meta`: a backslash in code and the rest of its line, which
    psql runs itself; `code`: the rest (a placeholder `${x}` is code). An unterminated
    literal, body or comment runs to the end.
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "$":
            if PLACEHOLDER.match(text, i) is None:
                tag = DOLLAR_TAG.match(text, i)
                if tag is not None and (
                    i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
                ):
                    end = text.find(tag.group(0), tag.end())
                    j = n if end < 0 else end + len(tag.group(0))
                    yield "dollar", i, j
                    i = j
                    continue
            m = PLACEHOLDER.match(text, i)
            j = m.end() if m is not None else i + 1
            yield "code", i, j
            i = j
        elif c in "'\"":
            j = _quote_end(text, i)
            yield "quoted", i, j
            i = j
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield "comment", i, j
            i = j
        elif text.startswith("/*", i):
            j = _comment_end(text, i)
            yield "comment", i, j
            i = j
        elif c == "\\":
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield "meta", i, j
            i = j
        else:
            m = _PLAIN.match(text, i)
            j = m.end() if m is not None else i + 1
            yield "code", i, j
            i = j


def _quote_end(text: str, i: int) -> int:
    """The end of the literal or quoted identifier opening at `i` (doubled quotes inside)."""
    q, n = text[i], len(text)
    escapes = q == "'" and i > 0 and text[i - 1] in "eE" and (i < 2 or not text[i - 2].isalnum())
    j = i + 1
    while j < n:
        if text[j] == q:
            if j + 1 < n and text[j + 1] == q:
                j += 2
                continue
            return j + 1
        j += 2 if escapes and text[j] == "\\" else 1
    return n


def _comment_end(text: str, i: int) -> int:
    """The end of the (nested) block comment opening at `i`."""
    j, depth, n = i + 2, 1, len(text)
    while j < n and depth:
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
        else:
            j += 1
    return j
