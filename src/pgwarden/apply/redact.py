"""Other sessions' query text, reduced to its shape before pgwarden stores or prints it.

A blocker's query can hold customer data or secrets in its literals. Events,
journals and the terminal get a fingerprint instead: the statement normalised
by the server's own parser (every constant becomes `$n`), comments removed,
whitespace collapsed, at most `LIMIT` characters. A query that does not parse
(truncated by track_activity_query_size, or not SQL) has its string, dollar-quoted
and numeric literals replaced by `?` with a regular expression.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pgwarden.apply.events import Blocker

__all__ = ["LIMIT", "fingerprint_query", "redact_blocker"]

LIMIT = 200

_TOKENS = re.compile(
    r"""
      (?P<ident>"(?:[^"]|"")*"?)                                  # quoted identifier: kept
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|$))                       # comments: dropped
    | \$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?(?:\$(?P=tag)\$|$)  # dollar-quoted
    | [Ee]'(?:[^'\\]|\\.|'')*(?:'|$)                           # E'...' (backslash escapes)
    | (?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|$)                   # '...', cut off at the end
    | (?<![\w$"])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w$])  # numbers
    """,
    re.DOTALL | re.VERBOSE,
)


def _replace(m: re.Match[str]) -> str:
    if m.group("ident") is not None:
        return m.group(0)
    return " " if m.group("comment") is not None else "?"


def fingerprint_query(query: str, limit: int = LIMIT) -> str:
    """`query` with every literal replaced (`$n` or `?`), no comments, at most `limit` chars."""
    from pglast import parser

    try:
        text = parser.normalize(query)  # the server's grammar: constants become $n
    except Exception:  # pglast raises ParseError, and other errors on odd input
        text = query
    text = " ".join(_TOKENS.sub(_replace, text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_blocker(blocker: Blocker, *, full_query: bool = False) -> Blocker:
    """`blocker` with its query as a fingerprint (unchanged with `full_query`)."""
    if full_query:
        return blocker
    return replace(blocker, query=fingerprint_query(blocker.query))
