"""Columns whose synthetic values are taken from a list (a Django field's `choices`).

Data migrations map values the application allows to something else (wagtail's
0086 maps `permission_type` `add`, `edit`, ... to permissions); values no
application would write make such a migration find nothing, and the
constraint that follows it fail on the copy only. `restrict` makes the listed
values the first generator of each such column: row `g` gets value
`1 + (g - 1) % n` of the list, cast to the column's type. A column that is
part of a unique key in which no other column is injective in `g` (row `g`
gets a value of its own) keeps its ordinary values, since a handful of values
would repeat the key: that is said in a note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg
from psycopg import sql

from pgwarden.rehearse.datagen import Column, Table
from pgwarden.rehearse.datagen_types import Maker

__all__ = ["restrict"]

Conn = psycopg.Connection[tuple[object, ...]]
Allowed = Mapping[tuple[str, str], Sequence[str]]  # (table, column) -> values, as text


def _maker(values: Sequence[str], type_: str) -> Maker:
    lits = sql.SQL(", ").join(sql.Literal(v) for v in values)

    def make(g: sql.Composable) -> sql.Composable:
        return sql.SQL("((ARRAY[{v}]::text[])[1 + (({g} - 1) % {n})])::{t}").format(
            v=lits, g=g, n=sql.Literal(len(values)), t=sql.SQL(type_)
        )

    return make


def _injective(t: Table, c: Column, restricted: set[str]) -> bool:
    """Row `g` of `t` gets a value of its own in `c` (see datagen: a key's columns)."""
    if c.generated or c.name in restricted:
        return False
    if c.name in t.fks:  # a foreign key column in a unique key points at parent row g
        return True
    return bool(c.options) and c.enum_size is None and c.category != "B"


def _blocking_key(t: Table, col: str, restricted: set[str]) -> tuple[str, ...] | None:
    """A unique key of `t` with `col` in it and no other column injective in `g`."""
    for key in t.keys:
        if col in key and not any(_injective(t, t.column(k), restricted) for k in key if k != col):
            return key
    return None


def _resolve(conn: Conn, tables: Mapping[str, Table], name: str) -> Table | None:
    """The table `name` (as the application names it: unquoted, case kept)."""
    if name in tables:
        return tables[name]
    row = conn.execute(
        "SELECT coalesce(to_regclass(quote_ident(%s)), to_regclass(%s))::text", (name, name)
    ).fetchone()
    return tables.get(str(row[0])) if row is not None and row[0] is not None else None


def restrict(
    conn: Conn, tables: Mapping[str, Table], allowed: Allowed
) -> tuple[list[str], list[str]]:
    """Give each column of `allowed` its values as first generator: the columns that got
    them (`table.column`), and notes on those left with their ordinary values.

    Copied tables (copy_data) and foreign key or generated columns are left as they are;
    so are values the column's type does not accept (said in a note).
    """
    used: list[str] = []
    notes: list[str] = []
    wanted: dict[str, dict[str, Sequence[str]]] = {}
    for (table, col), values in allowed.items():
        t = _resolve(conn, tables, table)
        if t is None or t.copied or not values:
            continue
        if any(c.name == col and not c.generated and col not in t.fks for c in t.columns):
            wanted.setdefault(t.name, {})[col] = values
    for name, cols in wanted.items():
        t = tables[name]
        restricted = set(cols)
        for col, values in cols.items():
            c = t.column(col)
            key = _blocking_key(t, col, restricted)
            if key is not None:
                notes.append(
                    f"{name}.{col}: synthetic values, not its {len(values)} choices: it is in "
                    f"the unique key ({', '.join(key)}) and no other column of it has a value "
                    "per row"
                )
                restricted.discard(col)
                continue
            make = _maker(values, c.type)
            probe = sql.SQL("SELECT count({}) FROM generate_series(1::bigint, {}) AS s(g)").format(
                make(sql.SQL("g")), sql.Literal(len(values))
            )
            try:
                with conn.transaction():
                    conn.execute(probe)
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                notes.append(
                    f"{name}.{col}: synthetic values, not its choices: its type {c.type} "
                    f"does not take them ({first})"
                )
                restricted.discard(col)
                continue
            c.options.insert(0, make)
            c.level = 0
            used.append(f"{name}.{col}")
    return used, notes
