"""Row numbers for the probe writer's INSERTs whose unique keys no row has yet.

Row `g` of a table gets values that are functions of `g` (datagen.py) and the
loaded rows are 1..N. Where every unique key's values never repeat, the writer's
k-th INSERT is row `FRESH + M + k` (M: the most rows of any table, so that all
writers insert the same row numbers): new by construction, and far above the
keys the table's sequences hand out next (a step's own INSERT gets those).

A unique key whose columns repeat after R rows (a `char(2)` after 1,296, a
`boolean` after 2, an enum after its labels) has only R - N values left: the
writer takes the row numbers N + 1 .. R (moved by a multiple of every key's
period, so the values are the same and the other columns' are far above the
sequences) and stops inserting when none is left. A key with a foreign key
column that is unique (a 1:1 child: row g points at parent row g) has the
parents' rows past N, then the rows every parent's own writer inserted. A copied
table's (copy_data) real keys may be anywhere: its row numbers are each checked
against the rows in the table first (`POOL` of them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.rehearse.datagen import Table, value

__all__ = ["FRESH", "POOL", "FreshRows", "fresh_base", "fresh_rows"]

FRESH = 1_000_000  # an unbounded table's k-th probe INSERT is row FRESH + rows + k
POOL = 20_000  # row numbers checked ahead for a table whose keys are bounded
_INT4_MAX = 2**31 - 1

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(slots=True)
class FreshRows:
    """Where the probe writer of one table takes the row numbers of its INSERTs."""

    table: str
    base: int  # the k-th INSERT is row base + k ...
    last: int | None = None  # ... up to this row (None: no end)
    pool: list[int] | None = None  # or these row numbers, checked (a copied table's)
    # ... then the rows every one of these parents' writers inserted (a 1:1 child)
    follows: tuple[str, ...] = ()
    why: str = ""  # what bounds the keys: "its unique key (code character(2)) holds 1,296 values"

    def size(self) -> int | None:
        """How many row numbers `take` gives (None: no end)."""
        if self.pool is not None:
            return len(self.pool)
        return None if self.last is None else max(self.last - self.base, 0)

    def take(self, k: int) -> int | None:
        """The row number of the k-th INSERT (k from 1); None past the last."""
        if self.pool is not None:
            return self.pool[k - 1] if k <= len(self.pool) else None
        g = self.base + k
        return g if self.last is None or g <= self.last else None


def fresh_base(tables: Mapping[str, Table]) -> int:
    """The row number past which every table's probe INSERTs go: one for all tables, so
    that the writers of a 1:1 child's parents insert the same row numbers."""
    return FRESH + max((t.rows for t in tables.values()), default=0)


def _unique_fks(tables: Mapping[str, Table], t: Table) -> dict[str, str]:
    """Foreign key columns of `t` in a unique key (row g points at parent row g)."""
    return {
        col: parent
        for col, (parent, _) in t.fks.items()
        if parent != t.name and parent in tables and t.column(col).unique
    }


def _key_period(t: Table, key: tuple[str, ...]) -> int | None:
    """After how many rows the probe's values of `key` repeat (None: they never do, or a
    column of it is NULL, which never conflicts)."""
    room = 1
    for name in key:
        c = t.column(name)
        n = c.period()
        if n is None or c.generated or c.omit or name in t.fks:
            return None
        room = math.lcm(room, n)
    return room if room <= _INT4_MAX else None  # long text: never reached by row numbers


def _bounds(t: Table, fk_keys: set[str]) -> list[tuple[int, tuple[str, ...]]]:
    """(period, key) of each unique key whose values repeat (keys with a unique foreign
    key column are bounded by the parent instead)."""
    out = []
    for key in t.keys:
        if fk_keys & set(key):
            continue
        if (n := _key_period(t, key)) is not None:
            out.append((n, key))
    return out


def _keys_free(tables: Mapping[str, Table], t: Table, lo: int, hi: int) -> sql.Composed:
    """Row numbers lo..hi whose values of every unique key no row of `t` has."""
    g = sql.SQL("g")
    absent = [
        sql.SQL("NOT EXISTS (SELECT 1 FROM {t} WHERE {cond})").format(
            t=sql.SQL(t.name),
            cond=sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), value(tables, t.name, c, g))
                for c in key
            ),
        )
        for key in t.keys
    ]
    return sql.SQL(
        "SELECT g FROM generate_series({lo}::bigint, {hi}::bigint) AS s(g) WHERE {w} ORDER BY g"
    ).format(
        lo=sql.Literal(lo),
        hi=sql.Literal(hi),
        w=sql.SQL(" AND ").join(absent) if absent else sql.SQL("true"),
    )


def fresh_rows(
    conn: Conn, tables: Mapping[str, Table], name: str, base: int | None = None
) -> FreshRows:
    """How the probe writer of `name` picks fresh rows, read against its rows now (`base`:
    `fresh_base(tables)`, past which unbounded keys take their row numbers)."""
    t = tables[name]
    n = max(t.rows, 0)
    start = fresh_base(tables) if base is None else base
    fks = _unique_fks(tables, t)
    bounds = _bounds(t, set(fks))
    if not bounds and not fks and not t.copied:
        return FreshRows(name, start)
    whys: list[str] = []
    room: int | None = None
    shift = 0
    if bounds:
        period, key = min(bounds)
        room = period
        cols = ", ".join(f"{k} {t.column(k).type}" for k in key)
        whys.append(f"its unique key ({cols}) holds {period:,} values")
        every = math.lcm(*(p for p, _ in bounds))
        shift = every * math.ceil(start / every)
        if shift + period > _INT4_MAX:
            shift = 0
    follows: tuple[str, ...] = ()
    if fks:
        follows = tuple(sorted(set(fks.values())))
        room = min([tables[p].rows for p in follows] + ([room] if room is not None else []))
        shift = 0  # row g points at each parent's row g: it must exist
        cols = ", ".join(sorted(fks))
        whys.append(
            f"a new row needs a row of its own in {', '.join(follows)} ({cols} in its unique keys)"
        )
    if room is None:  # copied rows, unbounded keys: far above them, checked all the same
        lo, hi = start + 1, start + POOL
    else:
        lo, hi = n + 1 + shift, room + shift
    if not t.copied:
        return FreshRows(name, lo - 1, hi, None, follows, "; ".join(whys))
    pool: list[int] = []
    if lo <= hi:
        try:
            with conn.transaction():
                found = conn.execute(_keys_free(tables, t, lo, min(hi, lo + POOL - 1)))
                pool = [int(str(r[0])) for r in found]
        except psycopg.Error:  # values its type refuses past the loaded rows: none
            pool = []
    return FreshRows(name, lo - 1, hi, pool, follows, "; ".join(whys))
