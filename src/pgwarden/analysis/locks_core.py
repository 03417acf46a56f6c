"""Building blocks of the lock model: the accumulator, relation names, catalog look-ups.

Facts here were measured on PostgreSQL 15-18 (tests/analysis/test_locks_live.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgwarden.analysis.catalog import Catalog, Constraint, Relation
from pgwarden.analysis.effects import Effects, LockMode, RelationLock, TypeChange
from pgwarden.analysis.nodes import Node, RangeVar, quote, regclass_name, strings

if TYPE_CHECKING:
    from pgwarden.analysis.inplan import Draft, InPlan

NEWEST = 18
OLDEST = 13

AS = LockMode.ACCESS_SHARE
RS = LockMode.ROW_SHARE
RE = LockMode.ROW_EXCLUSIVE
SUE = LockMode.SHARE_UPDATE_EXCLUSIVE
SH = LockMode.SHARE
SRE = LockMode.SHARE_ROW_EXCLUSIVE
EX = LockMode.EXCLUSIVE
AE = LockMode.ACCESS_EXCLUSIVE


# The reason of the lock on the referenced table when a foreign key is dropped (rules
# read it: a foreign key has no dependents).
FK_TRIGGERS_DROPPED = "its triggers on the referenced table dropped"


class Ctx:
    """Collects the effects of one statement."""

    __slots__ = (
        "assumptions",
        "catalog",
        "creates",
        "ctes",
        "destroys",
        "inplan",
        "locks",
        "no_ops",
        "rewrites",
        "scans",
        "session_timezone",
        "transactional",
        "type_changes",
        "version",
        "version_assumed",
    )

    def __init__(self, catalog: Catalog | None, version: int, inplan: InPlan | None = None) -> None:
        self.catalog = catalog
        self.inplan = inplan  # what earlier statements of the plan created and changed
        self.version = version
        self.locks: dict[tuple[str, LockMode], RelationLock] = {}
        self.rewrites: dict[str, None] = {}
        self.scans: dict[str, None] = {}
        self.destroys: dict[str, None] = {}
        self.creates: dict[str, None] = {}
        self.assumptions: dict[str, None] = {}
        self.transactional = True
        self.version_assumed = False
        self.session_timezone: str | None = None
        self.type_changes: list[TypeChange] = []
        self.no_ops: dict[str, None] = {}
        self.ctes: frozenset[str] = frozenset()  # WITH query names: not relations

    def at_least(self, major: int) -> bool:
        """Whether the server is `major` or newer (states the assumption when defaulted)."""
        if self.version_assumed:
            self.assume(f"Server version not given; assuming PostgreSQL {self.version}.")
        return self.version >= major

    # -- recording -------------------------------------------------------------------

    def lock(self, rel: str, mode: LockMode, reason: str, relkind: str | None = None) -> None:
        """Record `mode` on `rel` (first reason wins)."""
        key = (rel, mode)
        if key not in self.locks:
            self.locks[key] = RelationLock(rel, mode, relkind or self.kind(rel), reason)

    def assume(self, text: str) -> None:
        self.assumptions[text] = None

    def rewrite(self, rel: str) -> None:
        self.rewrites[rel] = None

    def scan(self, rel: str) -> None:
        self.scans[rel] = None

    def destroy(self, what: str) -> None:
        self.destroys[what] = None

    def create(self, rel: str) -> None:
        self.creates[rel] = None

    def no_op(self, what: str) -> None:
        """A sub-command with nothing to do: `what` as "DROP NOT NULL t.c"."""
        self.no_ops[what] = None

    def effects(self) -> Effects:
        return Effects(
            locks=tuple(self.locks.values()),
            rewrites=tuple(self.rewrites),
            scans=tuple(self.scans),
            destroys=tuple(self.destroys),
            creates=tuple(self.creates),
            transactional=self.transactional,
            assumptions=tuple(self.assumptions),
            type_changes=tuple(self.type_changes),
            no_ops=tuple(self.no_ops),
        )

    # -- names and catalog -----------------------------------------------------------

    def name(self, schema: str | None, relname: str) -> str:
        """regclass text of a relation named in SQL."""
        if self.catalog is not None:
            rel = self.catalog.resolve(schema, relname)
            if rel is not None:
                return rel.name
            if schema is not None and schema not in self.catalog.search_path:
                return f"{quote(schema)}.{quote(relname)}"
            return quote(relname)
        return regclass_name(schema, relname)

    def rv(self, rangevar: RangeVar) -> str:
        """regclass text of a RangeVar."""
        return self.name(rangevar.get("schemaname"), rangevar["relname"])

    def qualified(self, items: list[Node]) -> str:
        """regclass text of a dotted name given as String nodes (DROP, COMMENT)."""
        parts = strings(items)
        return self.name(parts[-2] if len(parts) > 1 else None, parts[-1])

    def new_name(self, base: str, schema_of: str | None = None) -> str:
        """A name the server will choose for a new relation (same schema as `schema_of`)."""
        prefix = ""
        if schema_of is not None and "." in schema_of and not schema_of.startswith('"'):
            prefix = schema_of.rsplit(".", 1)[0] + "."
        name = base[:63]
        if self.catalog is None:
            return prefix + name
        n = 0
        candidate = name
        while self.catalog.get(prefix + candidate) is not None:
            n += 1
            candidate = f"{name[: 63 - len(str(n))]}{n}"
        return prefix + candidate

    def rel_base(self, name: str) -> str:
        """The unqualified, unquoted name of a relation."""
        rel = self.rel(name)
        if rel is not None:
            return rel.relname
        return name.rsplit(".", 1)[-1].strip('"')

    def rel(self, name: str) -> Relation | None:
        """The relation, whole: as the plan left it, else the catalog's (None: not known)."""
        if self.inplan is not None and self.inplan.decides(name):
            return self.inplan.get(name)
        return self.catalog.get(name) if self.catalog is not None else None

    def known(self, name: str) -> Draft | Relation | None:
        """`rel` for look-ups by name, or what the plan said about a table the catalog does
        not show (its columns, constraints and indexes so far; what it lacks may exist)."""
        if self.inplan is not None:
            return self.inplan.draft(name)
        return self.rel(name)

    def nullable(self, table: str, column: str) -> bool | None:
        """Whether `column` of `table` may hold NULL before this statement (the catalog, or
        what the plan and the framework said); None: not known."""
        rel = self.known(table)
        return None if rel is None else rel.nullable(column)

    def kind(self, name: str) -> str:
        rel = self.rel(name)
        return rel.kind if rel is not None else "table"

    def indexes(self, table: str, what: str) -> tuple[str, ...]:
        """Index names of `table` the catalog shows; without a catalog, say that they are not
        known. Indexes built earlier in the plan are not listed: a plan that builds thousands
        would make every later statement's effects (and the lint) grow with them."""
        rel = self.catalog.get(table) if self.catalog is not None else None
        if rel is None:
            self.assume(f"The indexes of {table} are not known (no catalog); {what} is not listed.")
            return ()
        return tuple(i.name for i in rel.indexes)

    def children(self, table: str) -> tuple[str, ...]:
        """Partitions or inheritance children of `table`, all levels."""
        rel = self.rel(table)
        if rel is None:
            return ()
        out: list[str] = []
        for child in rel.partitions:
            out.append(child)
            out.extend(self.children(child))
        return tuple(out)

    def partitioned(self, table: str) -> bool:
        rel = self.rel(table)
        return rel is not None and rel.relkind == "p"

    def has_storage(self, name: str) -> bool:
        rel = self.rel(name)
        return rel is None or rel.relkind in ("r", "m", "t", "i", "S")

    def no_catalog(self, what: str) -> None:
        if self.catalog is None:
            self.assume(what)

    # -- composite effects shared by several statements ------------------------------

    def rewrite_table(self, table: str, reason: str) -> None:
        """A table rewrite: new relfilenode for the table and all its indexes."""
        if self.has_storage(table):
            self.rewrite(table)
            self.scan(table)
            self.lock(table, SH, f"{reason}: indexes rebuilt")
        for ix in self.indexes(table, "the rebuild of each index"):
            self.lock(ix, AE, f"{reason}: index rebuilt", "index")
            self.rewrite(ix)

    def planner_indexes(self, table: str, mode: LockMode, reason: str) -> None:
        """The planner opens every index of a table it plans a query on."""
        for ix in self.indexes(table, f"the {mode.title} lock the planner takes on each index"):
            self.lock(ix, mode, reason, "index")

    def fk_key_index(self, pk_table: str, pk_cols: list[str]) -> str | None:
        """The unique index a foreign key to `pk_table` (pk_cols) would use."""
        rel = self.rel(pk_table)
        if rel is None:
            return None
        for con in rel.constraints:
            if con.type in ("p", "u") and (
                (not pk_cols and con.type == "p") or list(con.columns) == pk_cols
            ):
                return con.index
        return None

    def add_foreign_key(
        self, table: str, pk_table: str, pk_cols: list[str], validate: bool, reason: str
    ) -> None:
        """Creating a foreign key: both tables SHARE ROW EXCLUSIVE, validation reads both."""
        for rel in (table, pk_table):
            self.lock(rel, SRE, reason)
            self.lock(rel, AS, f"{reason}: catalog checks")
        if validate:
            self.lock(pk_table, RS, f"{reason}: validation query")
            for rel in (table, pk_table):
                self.planner_indexes(rel, AS, f"{reason}: validation query planned")
                if self.has_storage(rel):
                    self.scan(rel)
            for child in self.children(table):
                if self.has_storage(child):
                    self.scan(child)
        elif self.at_least(18):
            ix = self.fk_key_index(pk_table, pk_cols)
            if ix is not None:
                self.lock(ix, AS, f"{reason}: referenced key index checked", "index")
            else:
                self.no_catalog(
                    f"PostgreSQL 18 also takes ACCESS SHARE on the unique index of {pk_table}"
                    " that the foreign key uses; it is not known without a catalog."
                )

    def drop_foreign_key(self, table: str, con: Constraint, reason: str) -> None:
        """Dropping a foreign key removes triggers on both tables."""
        if con.references is not None:
            self.lock(con.references, AE, f"{reason}: {FK_TRIGGERS_DROPPED}")

    def drop_relation(
        self, name: str, cascade: bool, reason: str, relkind: str | None = None
    ) -> None:
        """DROP of a relation and everything that goes with it (`relkind`: what the
        statement names, when the catalog does not show it)."""
        rel = self.rel(name)
        self.lock(name, AE, reason, None if rel is not None else relkind)
        if rel is None:
            self.no_catalog(
                f"Without a catalog, the indexes, sequences, partitions, referenced tables"
                f" and dependent views of {name} are not known; each is also locked"
                " ACCESS EXCLUSIVE when dropped."
            )
            return
        for ix in rel.indexes:
            self.lock(ix.name, AE, f"{reason}: index dropped", "index")
        for seq in rel.sequences:
            self.lock(seq, AE, f"{reason}: owned sequence dropped", "sequence")
        for con in rel.constraints:
            if con.type == "f" and con.references is not None and con.references != name:
                self.drop_foreign_key(name, con, reason)
        if rel.parent is not None and rel.partition_bound is not None:
            self.lock(rel.parent, AE, f"{reason}: detached from its partitioned table")
        for child in rel.partitions:
            crel = self.rel(child)
            if crel is not None and crel.partition_bound is not None:
                self.drop_relation(child, cascade, f"{reason}: partition dropped")
        if self.catalog is not None:
            for other, _con in self.catalog.referencing(name):
                if other.name != name:
                    self.lock(other.name, AE, f"{reason}: foreign key referencing it dropped")
        if cascade:
            for view in rel.views:
                self.drop_relation(view, cascade, f"{reason}: dependent view dropped (CASCADE)")
        if rel.relkind in ("r", "p", "m", "f"):
            self.destroy(f"{rel.kind} {name}")
        elif rel.relkind == "S":
            self.destroy(f"sequence {name}")
