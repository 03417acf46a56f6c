"""Synthetic values of any column type, as SQL expressions of the row number `g`.

Types are read from the catalog with what they are made of (a domain's base,
an array's element, a range's subtype, a multirange's range, a composite's
fields). Known families get an expression of `g` built from their parts; a
type with none gets a text literal that its input function accepts, found by
casting candidates on the server once per type. Every expression is tried on
the server (1,000 rows, so domain CHECKs and typmods are applied) before use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

__all__ = ["Maker", "TypeInfo", "Types"]

Conn = psycopg.Connection[tuple[object, ...]]
Maker = Callable[[sql.Composable], sql.Composable]  # g -> value expression

_TYPES = """
SELECT t.oid::int8, format_type(t.oid, NULL), t.typtype::text, t.typcategory::text,
       t.typname::text, t.typbasetype::int8, t.typtypmod, t.typndims,
       CASE WHEN t.typinput = 'array_in'::regproc THEN t.typelem::int8 ELSE 0 END,
       coalesce((SELECT r.rngsubtype::int8 FROM pg_range r WHERE r.rngtypid = t.oid), {multi}, 0),
       array(SELECT a.atttypid::int8 FROM pg_attribute a WHERE a.attrelid = t.typrelid
             AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       array(SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = t.typrelid
             AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       (SELECT count(*) FROM pg_enum e WHERE e.enumtypid = t.oid),
       t.typdefaultbin IS NOT NULL OR t.typdefault IS NOT NULL, t.typnotnull
FROM pg_type t WHERE t.oid = ANY(%s)
"""
_MULTI = "(SELECT r.rngtypid::int8 FROM pg_range r WHERE r.rngmultitypid = t.oid)"

# Text literals tried on a type with no generator; `%g` becomes the row number.
_CANDIDATES = (
    "%g",
    "v%g",
    "a.%g",
    "(%g,0)",
    "{%g}",
    "0/%g",
    "POINT(%g 0)",
    "0",
    "",
    "a",
    "t",
    "{}",
    "[]",
    "()",
    "(0,0)",
    "00:00",
    "2000-01-01",
    "SRID=4326;POINT(0 0)",
    '{"a": 1}',
    "<a/>",
    "-",
)
_SAMPLE = 1_000


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """A type and the types it is made of (oids; 0 when not applicable)."""

    oid: int
    name: str  # format_type without typmod
    typtype: str  # b base, c composite, d domain, e enum, r range, m multirange
    category: str
    typname: str
    base: int  # a domain's base type
    domain_typmod: int
    domain_ndims: int
    elem: int  # an array's element type
    sub: int  # a range's subtype, a multirange's range type
    fields: tuple[tuple[int, int], ...]  # a composite's (type, typmod)
    enum_size: int
    domain_default: bool
    domain_not_null: bool


def _lit(text: str, g: sql.Composable) -> sql.Composable:
    """A text expression: `text` with `%g` replaced by the row number."""
    parts = text.split("%g")
    if len(parts) == 1:
        return sql.Literal(text)
    pieces: list[sql.Composable] = []
    for i, p in enumerate(parts):
        if i:
            pieces.append(sql.SQL("{}::text").format(g))
        if p:
            pieces.append(sql.Literal(p))
    return sql.SQL("({})").format(sql.SQL(" || ").join(pieces))


class Types:
    """The catalog's types, the value expressions made of them, and their checks."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._info: dict[int, TypeInfo] = {}
        self._names: dict[tuple[int, int], str] = {}
        self._tried: dict[tuple[str, bool, int, bool], Maker | None] = {}
        self._candidate: dict[tuple[str, bool], Maker | None] = {}
        self.why: dict[str, str] = {}  # type name -> the server's first objection to a value

    def load(self, oids: set[int]) -> None:
        """Read `oids` and every type they are made of."""
        multi = _MULTI if self._conn.info.server_version >= 140000 else "NULL"
        query = _TYPES.format(multi=multi)
        todo = {o for o in oids if o and o not in self._info}
        while todo:
            more: set[int] = set()
            for r in self._conn.execute(query, (sorted(todo),)):
                ft: list[int] = [int(str(x)) for x in r[10]]  # type: ignore[attr-defined]
                fm: list[int] = [int(str(x)) for x in r[11]]  # type: ignore[attr-defined]
                info = TypeInfo(
                    oid=int(str(r[0])),
                    name=str(r[1]),
                    typtype=str(r[2]),
                    category=str(r[3]),
                    typname=str(r[4]),
                    base=int(str(r[5])),
                    domain_typmod=int(str(r[6])),
                    domain_ndims=int(str(r[7])),
                    elem=int(str(r[8])),
                    sub=int(str(r[9])),
                    fields=tuple(zip(ft, fm, strict=True)),
                    enum_size=int(str(r[12])),
                    domain_default=bool(r[13]),
                    domain_not_null=bool(r[14]),
                )
                self._info[info.oid] = info
                more |= {info.base, info.elem, info.sub, *ft}
            todo = {o for o in more if o and o not in self._info}

    def info(self, oid: int) -> TypeInfo:
        return self._info[oid]

    def name(self, oid: int, typmod: int) -> str:
        """format_type(oid, typmod), e.g. `character varying(20)[]`."""
        if typmod < 0:
            return self._info[oid].name
        key = (oid, typmod)
        if key not in self._names:
            row = self._conn.execute("SELECT format_type(%s, %s)", key).fetchone()
            self._names[key] = str(row[0]) if row else self._info[oid].name
        return self._names[key]

    def domains(self, oid: int) -> set[str]:
        """Names of the domains a value of this type passes through (their checks apply)."""
        t = self._info[oid]
        out: set[str] = {t.typname} if t.typtype == "d" else set()
        for o in (t.base, t.elem, t.sub, *(f for f, _ in t.fields)):
            if o:
                out |= self.domains(o)
        return out

    def not_null(self, oid: int) -> bool:
        """A domain on the way (domain over domain) forbids NULL."""
        t = self._info[oid]
        return t.typtype == "d" and (t.domain_not_null or self.not_null(t.base))

    def has_default(self, oid: int) -> bool:
        t = self._info[oid]
        return t.typtype == "d" and (t.domain_default or self.has_default(t.base))

    # -- expressions ---------------------------------------------------------

    def expr(
        self, oid: int, typmod: int, g: sql.Composable, unique: bool, ndims: int = 1
    ) -> sql.Composable | None:
        """A value of the type for row `g` (distinct per row if `unique`), or None."""
        t = self._info[oid]
        cast = sql.SQL(self.name(oid, typmod))
        if t.typtype == "d":
            mod = t.domain_typmod if t.domain_typmod >= 0 else typmod
            inner = self.expr(t.base, mod, g, unique, max(ndims, t.domain_ndims))
            return None if inner is None else sql.SQL("({})::{}").format(inner, cast)
        if t.elem:
            e = self.expr(t.elem, typmod, g, unique)
            if e is None:
                return None
            arr = sql.SQL("ARRAY[{}]").format(e)
            for _ in range(max(ndims, 1) - 1):
                arr = sql.SQL("ARRAY[{}]").format(arr)
            return sql.SQL("{}::{}").format(arr, cast)
        if t.enum_size:
            return sql.SQL("(enum_range(NULL::{t}))[1 + ({g} % {n})]").format(
                t=cast, g=g, n=sql.Literal(t.enum_size)
            )
        if t.typtype == "r":
            g1 = sql.SQL("({} + 1)").format(g)
            lo, hi = self.expr(t.sub, -1, g, True), self.expr(t.sub, -1, g1, True)
            if lo is None or hi is None:
                return None
            return sql.SQL("{}(least({lo}, {hi}), greatest({lo}, {hi}))").format(
                sql.SQL(t.name), lo=lo, hi=hi
            )
        if t.typtype == "m":
            r = self.expr(t.sub, -1, g, unique)
            return None if r is None else sql.SQL("{}({})").format(sql.SQL(t.name), r)
        if t.typtype == "c":
            fields = [self.expr(f, m, g, False) or sql.SQL("NULL") for f, m in t.fields]
            return sql.SQL("ROW({})::{}").format(sql.SQL(", ").join(fields), cast)
        return _base(t, typmod, cast, g, unique)

    def distinct(self, oid: int, typmod: int) -> int | None:
        """After how many rows the values of `expr` with `unique` repeat (row g + n gets
        row g's value); None: they do not (before any row count a rehearsal loads)."""
        t = self._info[oid]
        if t.typtype == "d":
            return self.distinct(t.base, t.domain_typmod if t.domain_typmod >= 0 else typmod)
        if t.elem:
            return self.distinct(t.elem, typmod)
        if t.enum_size:
            return t.enum_size
        if t.typtype in ("r", "m"):
            return self.distinct(t.sub, -1)
        if t.typtype == "c":
            return None
        return _base_distinct(t, typmod)

    def letters(self, oid: int, typmod: int) -> tuple[Maker, int] | None:
        """For short unique text (through domains): row g in capital letters only, and
        after how many rows it repeats; None for other types, or if the server refuses it."""
        name = self.name(oid, typmod)
        t = self._info[oid]
        while t.typtype == "d":
            typmod = t.domain_typmod if t.domain_typmod >= 0 else typmod
            t = self._info[t.base]
        limit = _text_limit(t, typmod) if t.category == "S" else None
        if limit is None or limit > _SHORT_TEXT:
            return None
        width = limit

        def make(g: sql.Composable) -> sql.Composable:
            return sql.SQL("({})::{}").format(_digits(g, width, _LETTERS), sql.SQL(name))

        if not self._works(make(sql.SQL("g")), False, name):  # distinct by construction
            return None
        return make, len(_LETTERS) ** limit

    def maker(
        self, oid: int, typmod: int, unique: bool, ndims: int = 1, *, distinct: bool = True
    ) -> Maker | None:
        """The generator of the type, tried on the server; None if it fails there. With
        `unique` and not `distinct`, the values need not all differ (an enum's labels)."""
        key = (self.name(oid, typmod), unique, ndims, distinct)
        if key not in self._tried:
            g0 = sql.SQL("g")
            built = self.expr(oid, typmod, g0, unique, ndims)
            ok = built is not None and self._works(built, unique and distinct, key[0])

            def make(g: sql.Composable) -> sql.Composable:
                e = self.expr(oid, typmod, g, unique, ndims)
                assert e is not None
                return e

            self._tried[key] = make if ok else None
        return self._tried[key]

    def candidate(self, oid: int, typmod: int, unique: bool) -> Maker | None:
        """A text literal the type's input accepts (with the row number in it if `unique`)."""
        name = self.name(oid, typmod)
        key = (name, unique)
        if key not in self._candidate:
            found: Maker | None = None
            for text in _CANDIDATES:
                if unique and "%g" not in text:
                    continue
                e = sql.SQL("({})::{}").format(_lit(text, sql.SQL("g")), sql.SQL(name))
                if self._works(e, unique, name):
                    found = _text_maker(text, name)
                    break
            self._candidate[key] = found
        return self._candidate[key]

    def candidates(self, oid: int, typmod: int, unique: bool) -> list[Maker]:
        """Every candidate text literal the type accepts (a fallback after a CHECK failed)."""
        name = self.name(oid, typmod)
        out: list[Maker] = []
        for text in _CANDIDATES:
            if unique and "%g" not in text:
                continue
            e = sql.SQL("({})::{}").format(_lit(text, sql.SQL("g")), sql.SQL(name))
            if self._works(e, unique, name):
                out.append(_text_maker(text, name))
        return out

    def _works(self, e: sql.Composable, unique: bool, name: str) -> bool:
        """The server accepts `e` for g in 1..1000 (distinct per row if `unique`)."""
        q = sql.SQL(
            "SELECT count(DISTINCT ({e})::text) FROM generate_series(1::bigint, {n}) AS s(g)"
        ).format(e=e, n=sql.Literal(_SAMPLE))
        try:
            with self._conn.transaction():
                row = self._conn.execute(q).fetchone()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()
            self.why.setdefault(name, first[0] if first else type(exc).__name__)
            return False
        n = int(str(row[0])) if row else 0
        return n == _SAMPLE if unique else n >= 1


def _text_maker(text: str, name: str) -> Maker:
    return lambda g: sql.SQL("({})::{}").format(_lit(text, g), sql.SQL(name))


_GEOMETRIC = {
    "point": "point({g}, 0)",
    "line": "line(point(0, 0), point(1, {g} + 1))",
    "lseg": "lseg(point({g}, 0), point({g}, 1))",
    "box": "box(point({g}, 0), point({g} + 1, 1))",
    "path": "path(polygon(box(point({g}, 0), point({g} + 1, 1))))",
    "polygon": "polygon(box(point({g}, 0), point({g} + 1, 1)))",
    "circle": "circle(point({g}, 0), 1)",
}
_TEXT_INPUT = {  # types read from text: a template of `g` their input accepts
    "tsvector": "w%g",
    "tsquery": "w%g",
    "pg_lsn": "0/%g",
    "hstore": "k=>%g",
    "ltree": "n.%g",
    "lquery": "n.%g",
    "xml": "<v>%g</v>",
    "txid_snapshot": "%g:%g:",
    "pg_snapshot": "%g:%g:",
}


def _numeric(typmod: int, g: sql.Composable, unique: bool) -> sql.Composable:
    """A number of row `g` that fits numeric(p, s) (typmod) and is never 0."""
    if typmod < 4:
        return sql.SQL("({})").format(g) if unique else sql.SQL("(1 + ({} * 31) % 1000)").format(g)
    precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
    whole = 10 ** max(precision - scale, 0)
    step = sql.Literal(10**scale)
    if unique:  # 1 .. 10**precision - 1 over and over: never past the precision
        span = sql.Literal(10**precision - 1)
        return sql.SQL("((1 + ({} - 1) % {})::numeric / {})").format(g, span, step)
    if whole <= 1:
        return sql.SQL("((1 + {} % 9)::numeric / {})").format(g, step)
    return sql.SQL("(1 + ({} * 31) % {})").format(g, sql.Literal(min(whole - 1, 1000)))


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SHORT_TEXT = 6  # unique text of at most this length: row g in base 36 (digits fit too few)


def _text_limit(t: TypeInfo, typmod: int) -> int | None:
    return typmod - 4 if t.typname in ("varchar", "bpchar") and typmod > 4 else None


_LETTERS = _ALPHABET[10:]  # for a CHECK that wants letters only (`^[A-Z]{2}$`)


def _digits(g: sql.Composable, width: int, alphabet: str = _ALPHABET) -> sql.Composable:
    """Row `g` modulo len(alphabet)**width, written in `width` digits of `alphabet`."""
    n = len(alphabet)
    digits = [
        sql.SQL("substr({a}, 1 + (({g} / {p}) % {n})::int, 1)").format(
            a=sql.Literal(alphabet), g=g, p=sql.Literal(n**k), n=sql.Literal(n)
        )
        for k in reversed(range(width))
    ]
    return sql.SQL("({})").format(sql.SQL(" || ").join(digits))


def _base_distinct(t: TypeInfo, typmod: int) -> int | None:
    """`distinct` of a base type: the values `_base` gives with `unique`."""
    name = t.typname
    if name == "int2":
        return 32_000
    if name == "bool":
        return 2
    if name == "numeric" and typmod >= 4:
        return int(10 ** ((typmod - 4) >> 16)) - 1
    if name in ("bit", "varbit"):
        return int(2 ** (typmod if typmod > 0 else 1 if name == "bit" else 64))
    limit = _text_limit(t, typmod)
    if t.category == "S" and limit is not None:
        return int(36**limit) if limit <= _SHORT_TEXT else int(10**limit) - 1
    return None


def _base(
    t: TypeInfo, typmod: int, cast: sql.Composable, g: sql.Composable, u: bool
) -> sql.Composable | None:
    """A base type's value: by family, else by name, else None."""
    cat, name = t.category, t.typname
    if name == "int2":
        return sql.SQL("(1 + {} % 32000)::int2").format(g)
    if name == "numeric":
        return sql.SQL("{}::{}").format(_numeric(typmod, g, u), cast)
    if name in ("money", "oid", "int4", "int8", "float4", "float8"):
        expr = sql.SQL("({})") if u else sql.SQL("(1 + ({} * 31) % 1000)")
        return sql.SQL("{}::{}").format(expr.format(g), cast)
    if cat == "S":
        expr = sql.SQL("({}::text)") if u else sql.SQL("('v' || ({} % 997)::text)")
        limit = _text_limit(t, typmod)
        if u and limit is not None and limit <= _SHORT_TEXT:
            return sql.SQL("{}::{}").format(_digits(g, limit), cast)
        text = expr.format(g)
        if limit:
            text = sql.SQL("left({}, {})").format(text, sql.Literal(limit))
        return sql.SQL("{}::{}").format(text, cast)
    if name == "bool":
        return sql.SQL("(({} % 2) = 0)").format(g)
    if name == "date":
        span = sql.SQL("{}") if u else sql.SQL("({} % 3650)")
        return sql.SQL("(date '2000-01-01' + ({})::int)").format(span.format(g))
    if name in ("time", "timetz"):
        unit = "1 microsecond" if u else "1 second"
        return sql.SQL("(time '00:00' + ({} % 86400000000) * interval {})::{}").format(
            g, sql.Literal(unit), cast
        )
    if name in ("timestamp", "timestamptz"):
        return sql.SQL("(timestamptz '2020-01-01 00:00+00' + {} * interval '1 second')::{}").format(
            g, cast
        )
    if name == "interval":
        return sql.SQL("({} * interval '1 second')::{}").format(g, cast)
    if name == "uuid":
        return sql.SQL("md5({}::text)::uuid").format(g)
    if name in ("json", "jsonb"):
        return sql.SQL("json_build_object('g', {})::{}").format(g, cast)
    if name == "bytea":
        return sql.SQL("decode(md5({}::text), 'hex')").format(g)
    if name in ("inet", "cidr"):
        return sql.SQL("('10.0.0.0'::inet + {})::{}").format(g, cast)
    if name in ("macaddr", "macaddr8"):
        return sql.SQL("lpad(to_hex({}), 12, '0')::{}").format(g, cast)
    if name in ("bit", "varbit"):  # the low bits of g, as many as the type holds
        n = typmod if typmod > 0 else 1 if name == "bit" else 64
        return sql.SQL("lpad(right({}::bit(64)::text, {n}), {n}, '0')::{}").format(
            g, cast, n=sql.Literal(n)
        )
    if name in _GEOMETRIC:
        return sql.SQL(_GEOMETRIC[name]).format(g=sql.SQL("({}::float8)").format(g))
    if name in _TEXT_INPUT:
        return sql.SQL("({})::{}").format(_lit(_TEXT_INPUT[name], g), cast)
    return None
