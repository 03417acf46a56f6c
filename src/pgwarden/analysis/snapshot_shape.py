"""The shape of a stats snapshot file (`pgwarden stats dump`), checked as it is loaded.

A hand-edited or damaged file (`"rows": "lots"`, a list where an object belongs) is
refused with the key that is wrong and what it must hold, before anything reads it,
instead of failing later, mid-lint, on a value of the wrong type. The shapes follow
`Stats.to_dict` and `Catalog.to_dict`; keys a reader fills in when absent may be
absent, and unknown keys are ignored except in a table's or an index's stats, whose
every key becomes a field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["snapshot_problem"]


@dataclass(frozen=True, slots=True)
class _Scalar:
    what: str
    test: Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class _Opt:
    """`shape` or null."""

    shape: _Shape


@dataclass(frozen=True, slots=True)
class _List:
    item: _Shape
    label: str | None = None  # key of an object item that names it in paths ("name")


@dataclass(frozen=True, slots=True)
class _Row:
    """A list of positional values (a column, index or constraint of the catalog)."""

    items: tuple[tuple[str, _Shape], ...]
    required: int


@dataclass(frozen=True, slots=True)
class _Map:
    """An object whose keys are data (table names), each holding `value`."""

    value: _Shape


@dataclass(frozen=True, slots=True)
class _Obj:
    fields: dict[str, _Shape]
    required: frozenset[str] = frozenset()
    closed: bool = False  # unknown keys are an error


@dataclass(frozen=True, slots=True)
class _Either:
    options: tuple[_Shape, ...]


_Shape = _Scalar | _Opt | _List | _Row | _Map | _Obj | _Either


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_STR = _Scalar("a string", lambda v: isinstance(v, str))
_INT = _Scalar("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
_NUM = _Scalar("a number", _number)
_BOOL = _Scalar("true or false", lambda v: isinstance(v, bool))
_TEXT = _Scalar("a string", lambda v: isinstance(v, str) or _number(v) or isinstance(v, bool))
_ANY = _Scalar("anything", lambda v: True)
_NAMES = _List(_STR)

_TABLE = _Obj(
    {
        "name": _STR,
        "rows": _INT,
        "total_bytes": _INT,
        "table_bytes": _INT,
        "index_bytes": _INT,
        "seq_scan": _INT,
        "idx_scan": _INT,
        "n_tup_ins": _INT,
        "n_tup_upd": _INT,
        "n_tup_del": _INT,
        "writes_per_s": _Opt(_NUM),
        "reads_per_s": _Opt(_NUM),
    },
    frozenset({"name", "rows", "total_bytes", "table_bytes", "index_bytes"}),
    closed=True,
)
_INDEX = _Obj(
    {"name": _STR, "table": _STR, "bytes": _INT, "idx_scan": _INT, "scans_per_s": _Opt(_NUM)},
    frozenset({"name", "table", "bytes", "idx_scan"}),
    closed=True,
)
_COLUMN_STATS = _Obj(
    {
        "null_frac": _NUM,
        "n_distinct": _NUM,
        "mcv": _List(_TEXT),
        "mcf": _List(_NUM),
        "bounds": _List(_TEXT),
    }
)
_STATS = _Obj(
    {
        "taken_at": _TEXT,
        "server_version_num": _INT,
        "database": _TEXT,
        "sample_s": _NUM,
        "tables": _Map(_TABLE),
        "indexes": _Map(_INDEX),
        "columns": _Opt(_Map(_Map(_COLUMN_STATS))),
    },
    frozenset({"taken_at", "server_version_num", "database"}),
)
_RELATION = _Obj(
    {
        "name": _STR,
        "schema": _STR,
        "relname": _STR,
        "relkind": _STR,
        "columns": _List(
            _Row(
                (
                    ("name", _STR),
                    ("type", _STR),
                    ("not_null", _BOOL),
                    ("generated", _STR),
                    ("identity", _STR),
                ),
                5,
            )
        ),
        "indexes": _List(
            _Row(
                (
                    ("name", _STR),
                    ("valid", _BOOL),
                    ("unique", _BOOL),
                    ("primary", _BOOL),
                    ("columns", _NAMES),
                ),
                5,
            )
        ),
        "constraints": _List(
            _Row(
                (
                    ("name", _STR),
                    ("type", _STR),
                    ("validated", _BOOL),
                    ("references", _Opt(_STR)),
                    ("definition", _STR),
                    ("columns", _NAMES),
                    ("index", _Opt(_STR)),
                    ("ref_columns", _NAMES),
                ),
                7,
            )
        ),
        "parent": _Opt(_STR),
        "partitions": _NAMES,
        "partition_bound": _Opt(_STR),
        "sequences": _NAMES,
        "views": _NAMES,
        "view_columns": _List(_Row((("view", _STR), ("column", _STR)), 2)),
        "triggers": _List(_Either((_STR, _Row((("name", _TEXT), ("function", _TEXT)), 2)))),
        "table": _Opt(_STR),
    },
    frozenset(
        {
            "name",
            "schema",
            "relname",
            "relkind",
            "columns",
            "indexes",
            "constraints",
            "parent",
            "partitions",
            "partition_bound",
            "sequences",
            "views",
            "triggers",
            "table",
        }
    ),
)
_CATALOG = _Obj(
    {
        "relations": _List(_RELATION, label="name"),
        "search_path": _NAMES,
        "timezone": _TEXT,
        "server_version": _Opt(_INT),
        "constrained_domains": _List(_Row((("schema", _TEXT), ("name", _TEXT)), 2)),
        "domain_bases": _List(_Row((("schema", _TEXT), ("name", _TEXT), ("base type", _TEXT)), 3)),
        "enums": _List(_Row((("schema", _TEXT), ("name", _TEXT)), 2)),
    }
)
_SNAPSHOT = _Obj(
    {
        "stats": _STATS,
        "catalog": _Opt(_CATALOG),
        "top_queries": _Opt(_List(_ANY)),
        "migrations": _Opt(
            _Obj({"alembic_version": _Opt(_List(_TEXT)), "django_migrations": _Opt(_List(_TEXT))})
        ),
    },
    frozenset({"stats"}),
)


def snapshot_problem(data: dict[str, object]) -> str | None:
    """What is wrong with the shape of a loaded snapshot file, or None: the key (as a
    path: `stats.tables["accounts"].rows`), what it must hold and what it holds."""
    return _problem(data, _SNAPSHOT, "")


def _problem(value: object, shape: _Shape, path: str) -> str | None:
    if isinstance(shape, _Opt):
        if value is None:
            return None
        if not _fits(value, shape.shape):
            return _wrong(value, _what(shape), path)
        return _problem(value, shape.shape, path)
    if isinstance(shape, _Either):
        for option in shape.options:
            if _problem(value, option, path) is None:
                return None
        return _wrong(value, " or ".join(_what(o) for o in shape.options), path)
    if isinstance(shape, _Scalar):
        return None if shape.test(value) else _wrong(value, shape.what, path)
    if isinstance(shape, _List | _Row):
        if not isinstance(value, list):
            return _wrong(value, _what(shape), path)
        if isinstance(shape, _Row):
            return _row_problem(value, shape, path)
        for i, item in enumerate(value):
            name = item.get(shape.label) if shape.label and isinstance(item, dict) else None
            where = f"{path}[{i}]" + (f" ({name})" if isinstance(name, str) else "")
            if (problem := _problem(item, shape.item, where)) is not None:
                return problem
        return None
    if not isinstance(value, dict):
        return _wrong(value, _what(shape), path)
    if isinstance(shape, _Map):
        for key, item in value.items():
            if (problem := _problem(item, shape.value, f"{path}[{json.dumps(key)}]")) is not None:
                return problem
        return None
    for key in sorted(shape.required - value.keys()):
        return f"{_at(path)}the key {key!r} is missing (expected {_what(shape.fields[key])})"
    for key, item in value.items():
        field = shape.fields.get(key)
        if field is None:
            if shape.closed:
                known = ", ".join(shape.fields)
                return f"{_at(path)}unknown key {key!r} (expected one of: {known})"
            continue
        if (problem := _problem(item, field, f"{path}.{key}" if path else key)) is not None:
            return problem
    return None


def _row_problem(value: list[object], shape: _Row, path: str) -> str | None:
    if not shape.required <= len(value) <= len(shape.items):
        return _wrong(value, _what(shape), path)
    for i, (item, (name, item_shape)) in enumerate(zip(value, shape.items, strict=False)):
        if (problem := _problem(item, item_shape, f"{path}[{i}] ({name})")) is not None:
            return problem
    return None


def _fits(value: object, shape: _Shape) -> bool:
    """Whether `value` is of the kind `shape` asks for (its contents unchecked)."""
    if isinstance(shape, _Scalar):
        return shape.test(value)
    if isinstance(shape, _Opt):
        return value is None or _fits(value, shape.shape)
    if isinstance(shape, _Either):
        return any(_fits(value, o) for o in shape.options)
    if isinstance(shape, _List | _Row):
        return isinstance(value, list)
    return isinstance(value, dict)


def _what(shape: _Shape) -> str:
    if isinstance(shape, _Scalar):
        return shape.what
    if isinstance(shape, _Opt):
        return f"{_what(shape.shape)} or null"
    if isinstance(shape, _Either):
        return " or ".join(_what(o) for o in shape.options)
    if isinstance(shape, _List):
        return "a list"
    if isinstance(shape, _Row):
        names = ", ".join(name for name, _ in shape.items)
        return f"a list of {len(shape.items)} values [{names}]" + (
            f" (the last {len(shape.items) - shape.required} optional)"
            if shape.required < len(shape.items)
            else ""
        )
    return "an object"


def _wrong(value: object, expected: str, path: str) -> str:
    return f"{_at(path)}expected {expected}, found {_found(value)}"


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _found(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return (
            f"a list of {len(value)} value{'s' * (len(value) != 1)}" if value else "an empty list"
        )
    return "an object"
