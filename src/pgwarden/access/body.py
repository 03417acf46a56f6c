"""What a SECURITY DEFINER routine's body writes or changes, as far as its text shows.

Only a note on the audit's path: the routine is a path whatever its body does
(the owner's rights are what it may use, and `CREATE OR REPLACE` changes the
body). SQL and PL/pgSQL bodies are parsed with the server's parser (pglast);
`EXECUTE` of SQL built at run time is reported as dynamic SQL.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pgwarden.analysis.parse import parse
from pgwarden.analysis.plpgsql import body_statements
from pgwarden.errors import SqlParseError

__all__ = ["body_note"]

_READS = frozenset({"SelectStmt", "VariableSetStmt", "VariableShowStmt"})
_WORDS = re.compile(r"[A-Z][a-z]*")


def _kind(node: str) -> str:
    """`AlterTableStmt` -> `ALTER TABLE`, `DeleteStmt` -> `DELETE`."""
    return " ".join(_WORDS.findall(node.removesuffix("Stmt"))).upper()


@lru_cache(maxsize=1024)
def body_note(language: str, body: str) -> str | None:
    """`body: DELETE, DROP` (the kinds of statement the body runs that are not reads),
    `body: dynamic SQL` for EXECUTE of built SQL, `body: reads only`; None when the
    body is not SQL or PL/pgSQL, or cannot be parsed."""
    kinds: list[str] = []
    try:
        if language == "sql":
            kinds = [s.kind for s in parse(body)]
        elif language == "plpgsql":
            inner = body_statements(body)
            if len(inner) == 1 and inner[0].dynamic and inner[0].text == body:
                return None  # the PL/pgSQL parser rejected it
            kinds = ["dynamic" if s.tree is None else next(iter(s.tree)) for s in inner]
        else:
            return None
    except SqlParseError:
        return None
    seen = [
        "dynamic SQL" if k == "dynamic" else _kind(k)
        for k in dict.fromkeys(kinds)
        if k not in _READS
    ]
    return f"body: {', '.join(seen)}" if seen else "body: reads only"
