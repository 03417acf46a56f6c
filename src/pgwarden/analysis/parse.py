"""The only module that talks to the parser (pglast, i.e. PostgreSQL's own grammar).

A statement's tree is libpg_query's JSON form loaded into plain dicts: a node
is `{"NodeType": {field: value, ...}}`. Parsing statement by statement through
the JSON path is several times faster than building pglast's Node objects.
"""

from __future__ import annotations

import gc
import re
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.machinery import PathFinder
from importlib.util import find_spec, module_from_spec
from typing import Any, cast

import orjson

from pgwarden.analysis.nodes import Node
from pgwarden.errors import SqlParseError
from pgwarden.findings import slot_setter
from pgwarden.location import SourceLocation, line_col

_LOADING = threading.RLock()  # one thread runs a deferred module's code; others wait
_RUNNING: set[str] = set()  # deferred modules whose code is running now


class _OnFirstUse(types.ModuleType):
    """A module whose code runs when one of its attributes is first read: once, by
    whichever thread reads first, while the others wait. The code runs in a module of its
    own whose names are then copied in at once, so no thread sees it half-run (pglast.ast
    finishes its classes' slots after defining them)."""

    def __getattr__(self, name: str) -> Any:
        with _LOADING:
            if type(self) is _OnFirstUse and self.__name__ not in _RUNNING:
                spec = self.__spec__
                assert spec is not None and spec.loader is not None
                ran = module_from_spec(spec)
                _RUNNING.add(self.__name__)  # its own code reading it: AttributeError
                try:
                    spec.loader.exec_module(ran)
                finally:
                    _RUNNING.discard(self.__name__)
                vars(self).update(vars(ran))  # one step: no other thread runs meanwhile
                object.__setattr__(self, "__class__", types.ModuleType)  # a plain module again
        return object.__getattribute__(self, name)


def _defer_pglast_nodes() -> None:
    """Import pglast without its enums and AST classes until something reads them.

    pglast's package and its parser module import `pglast.enums` and `pglast.ast` for
    `parse_sql`'s Node objects: ~35 ms of CPU, a fifth of `pgwarden lint`'s start-up, that
    the JSON entry points used here never need. Each is registered as a module that runs
    its code on first use (`pglast.parse_sql(...)`, `from pglast.enums import X`).
    """
    if "pglast" in sys.modules:
        return
    spec = find_spec("pglast")
    where = list(spec.submodule_search_locations or ()) if spec is not None else []
    for name in ("pglast.enums", "pglast.ast"):
        sub = PathFinder.find_spec(name, where) if where else None
        if sub is None or sub.loader is None:
            continue
        module = module_from_spec(sub)
        module.__class__ = _OnFirstUse
        sys.modules[name] = module


_defer_pglast_nodes()

from pglast import parser as _parser  # noqa: E402 - after the deferral above

for _sub in ("enums", "ast"):  # bound on the package, as importing them would have done
    if f"pglast.{_sub}" in sys.modules:
        vars(sys.modules["pglast"]).setdefault(_sub, sys.modules[f"pglast.{_sub}"])

__all__ = [
    "Body",
    "Node",
    "ParsedStatement",
    "Trees",
    "check_expressions",
    "comments",
    "fingerprint",
    "gc_paused",
    "parse",
    "parse_one",
    "server_grammar_version",
]

# A statement's fields without their types, for code outside the typed boundary
# (analysis/nodes.py types the tree; the lock model and the rules read it through those).
Body = dict[str, Any]


@dataclass(frozen=True, slots=True, init=False)
class ParsedStatement:
    """One statement: its text, character offsets in the source, and its tree."""

    text: str
    start: int
    end: int
    tree: Node

    # One per statement: each slot set through its own setter (`slot_setter`), a third
    # of the frozen dataclass __init__'s cost per field.
    def __init__(self, text: str, start: int, end: int, tree: Node) -> None:
        _text(self, text)
        _start(self, start)
        _end(self, end)
        _tree(self, tree)

    @property
    def kind(self) -> str:
        """The statement's node type, e.g. `AlterTableStmt`."""
        return next(iter(self.tree))

    @property
    def body(self) -> Body:
        """The statement node's fields (untyped; typed: `self.tree["<kind>"]`)."""
        body: Body = cast(Body, self.tree)[self.kind]
        return body


_text, _start, _end, _tree = (
    slot_setter(ParsedStatement, name) for name in ParsedStatement.__slots__
)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    Parse trees, steps and findings are acyclic, so reference counting frees them;
    the collector would only rescan the ever-growing set of live trees, again and
    again, which costs about as much as the parsing itself on large migrations.
    On the way out, what was built moves straight to the oldest generation
    (`freeze` + `unfreeze`, no scan), where only a full collection looks at it,
    unless the caller keeps objects frozen itself.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


# psql's variable interpolation (`:name`, `:'name'`, `:"name"`), not a `::` cast; or one
# as sources.placeholders reads it (`":name"`, `':name'`).
_PSQL_VARIABLE = re.compile(
    r"(?<!:):(?:[A-Za-z_][A-Za-z0-9_]*|'[A-Za-z_][A-Za-z0-9_]*'|\"[A-Za-z_][A-Za-z0-9_]*\")"
    r"|\":[A-Za-z_][A-Za-z0-9_]*\"|':[A-Za-z_][A-Za-z0-9_]*'"
)


def _error(text: str, message: str, offset: int | None, path: str, base: int) -> SqlParseError:
    at = base + (offset if offset is not None else len(text) - base)
    line, col = line_col(text, at)
    variable = _PSQL_VARIABLE.match(text, at)
    if variable is None:
        return SqlParseError(message, SourceLocation(path, line, col))
    name = variable.group(0)
    if name[0] in "'\"":  # read as an identifier or a literal, which cannot stand here
        name = ":" + name[2:-1] if name[0] == '"' else f":'{name[2:-1]}'"
    return SqlParseError(
        message,
        SourceLocation(path, line, col),
        hint=f"{name} looks like a psql variable: psql fills it in (\\set, psql -v) before "
        "the server sees the SQL; pgwarden does not know its value and reads it as a quoted "
        "identifier or literal, which cannot stand here: write the value in the file",
    )


# Statement text -> its trees; shared by the parse() calls of one run (`trees=`).
Trees = dict[str, list[Any]]


def parse(text: str, path: str = "<sql>", *, trees: Trees | None = None) -> list[ParsedStatement]:
    """Split and parse `text`; raises `SqlParseError` with file:line:column.

    `trees` carries the trees of statements already parsed from one call to the next
    (a statement repeated across the files of one run is parsed once, its tree shared).
    """
    with gc_paused():
        return _parse(text, path, {} if trees is None else trees)


def _parse(text: str, path: str, seen: Trees) -> list[ParsedStatement]:
    try:
        slices = _parser.split(text, with_parser=True, only_slices=True)
    except _parser.ParseError as exc:
        offset = exc.args[1] if len(exc.args) > 1 else None
        raise _error(text, str(exc.args[0]), offset, path, 0) from None
    result: list[ParsedStatement] = []
    # The same statement text always parses to the same tree (its locations count from
    # the statement's start): parsed once and the tree shared, read-only like every tree
    # (a file of 200,000 `SELECT 1;` or repeated batches keeps one tree, not one each).
    for sl in slices:
        stmt_text = text[sl]
        trees = seen.get(stmt_text)
        if trees is None:
            try:
                doc = orjson.loads(_parser.parse_sql_json(stmt_text))
            except _parser.ParseError as exc:  # pragma: no cover - split already parsed it
                offset = exc.args[1] if len(exc.args) > 1 else None
                raise _error(text, str(exc.args[0]), offset, path, sl.start) from None
            trees = seen[stmt_text] = [raw["stmt"] for raw in doc["stmts"]]
        for tree in trees:
            result.append(ParsedStatement(stmt_text, sl.start, sl.stop, tree))
    return result


def parse_one(text: str) -> Node:
    """The tree of a single statement (raises `SqlParseError`)."""
    stmts = parse(text)
    if len(stmts) != 1:
        raise SqlParseError(
            f"expected one statement, found {len(stmts)}", SourceLocation("<sql>", 1, 1)
        )
    return stmts[0].tree


def comments(text: str) -> list[tuple[int, str]]:
    """(character offset, text) of every comment in `text`."""
    return [(c.match_location, c.str) for c in _parser.comments(text)]


def check_expressions(statement: str) -> list[str]:
    """SQL of each CHECK expression an ALTER TABLE ... ADD CHECK statement adds, in order."""
    import pglast
    from pglast.stream import RawStream

    out: list[str] = []
    for raw in pglast.parse_sql(statement):
        for cmd in getattr(raw.stmt, "cmds", None) or ():
            con: Any = getattr(cmd, "def_", None)
            if getattr(con, "contype", None) == pglast.enums.ConstrType.CONSTR_CHECK:
                out.append(str(RawStream()(con.raw_expr)))
    return out


def fingerprint(text: str) -> str:
    """libpg_query's fingerprint: equal for statements that differ only in constants."""
    return str(_parser.fingerprint(text))


def server_grammar_version() -> tuple[int, int]:
    """The PostgreSQL version whose grammar the parser embeds."""
    major, minor = _parser.get_postgresql_version()
    return int(major), int(minor)
