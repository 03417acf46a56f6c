"""What a statement does to the database: locks, rewrites, scans, destruction.

These are plain frozen values produced by the lock model (`analysis.locks`)
and consumed by lint, rehearse and apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from pgwarden.findings import slot_setter

__all__ = ["Effects", "LockMode", "RelationLock", "TypeChange"]


class LockMode(IntEnum):
    """PostgreSQL's table-level lock modes, weakest first."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def title(self) -> str:
        """The SQL spelling: `ACCESS EXCLUSIVE`."""
        return self.name.replace("_", " ")

    @property
    def pg_name(self) -> str:
        """The name in `pg_locks.mode`: `AccessExclusiveLock`."""
        return "".join(w.capitalize() for w in self.name.split("_")) + "Lock"

    @classmethod
    def from_pg_name(cls, name: str) -> LockMode:
        """Parse `pg_locks.mode` (`RowExclusiveLock`)."""
        for mode in cls:
            if mode.pg_name == name:
                return mode
        raise ValueError(f"not a table lock mode: {name!r}")

    def conflicts_with(self, other: LockMode) -> bool:
        """Whether a lock in this mode waits for (or blocks) `other`."""
        return other in _CONFLICTS[self]

    @property
    def blocks_reads(self) -> bool:
        """Blocks plain SELECT (ACCESS SHARE)."""
        return self.conflicts_with(LockMode.ACCESS_SHARE)

    @property
    def blocks_writes(self) -> bool:
        """Blocks INSERT/UPDATE/DELETE (ROW EXCLUSIVE)."""
        return self.conflicts_with(LockMode.ROW_EXCLUSIVE)

    @property
    def blocks(self) -> str:
        """Plain words for what this mode blocks on the relation."""
        if self.blocks_reads:
            return "reads and writes"
        if self.blocks_writes:
            return "writes"
        if self.conflicts_with(LockMode.SHARE_UPDATE_EXCLUSIVE):
            return "schema changes, VACUUM and concurrent index builds"
        if self.conflicts_with(LockMode.SHARE):  # ROW EXCLUSIVE: what writers take
            return (
                "index builds (CREATE INDEX), CREATE TRIGGER, new foreign keys and most "
                "schema changes"
            )
        if self.conflicts_with(LockMode.EXCLUSIVE):  # ROW SHARE: SELECT FOR UPDATE
            return (
                "only EXCLUSIVE and ACCESS EXCLUSIVE (REFRESH MATERIALIZED VIEW CONCURRENTLY, "
                "DROP, most ALTER TABLE)"
            )
        if self.conflicts_with(LockMode.ACCESS_EXCLUSIVE):
            return "only ACCESS EXCLUSIVE (DROP, most ALTER TABLE)"
        return "nothing"


_M = LockMode
_CONFLICTS: dict[LockMode, frozenset[LockMode]] = {
    _M.ACCESS_SHARE: frozenset({_M.ACCESS_EXCLUSIVE}),
    _M.ROW_SHARE: frozenset({_M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}),
    _M.ROW_EXCLUSIVE: frozenset(
        {_M.SHARE, _M.SHARE_ROW_EXCLUSIVE, _M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}
    ),
    _M.SHARE_UPDATE_EXCLUSIVE: frozenset(
        {
            _M.SHARE_UPDATE_EXCLUSIVE,
            _M.SHARE,
            _M.SHARE_ROW_EXCLUSIVE,
            _M.EXCLUSIVE,
            _M.ACCESS_EXCLUSIVE,
        }
    ),
    _M.SHARE: frozenset(
        {
            _M.ROW_EXCLUSIVE,
            _M.SHARE_UPDATE_EXCLUSIVE,
            _M.SHARE_ROW_EXCLUSIVE,
            _M.EXCLUSIVE,
            _M.ACCESS_EXCLUSIVE,
        }
    ),
    _M.SHARE_ROW_EXCLUSIVE: frozenset(
        {
            _M.ROW_EXCLUSIVE,
            _M.SHARE_UPDATE_EXCLUSIVE,
            _M.SHARE,
            _M.SHARE_ROW_EXCLUSIVE,
            _M.EXCLUSIVE,
            _M.ACCESS_EXCLUSIVE,
        }
    ),
    _M.EXCLUSIVE: frozenset(
        {
            _M.ROW_SHARE,
            _M.ROW_EXCLUSIVE,
            _M.SHARE_UPDATE_EXCLUSIVE,
            _M.SHARE,
            _M.SHARE_ROW_EXCLUSIVE,
            _M.EXCLUSIVE,
            _M.ACCESS_EXCLUSIVE,
        }
    ),
    _M.ACCESS_EXCLUSIVE: frozenset(_M),
}


# RelationLock and Effects are built once or more per statement: their __init__ sets each
# slot through its own setter (`slot_setter`), a third of the frozen dataclass __init__'s
# cost per field (which looks each one up by name through object.__setattr__).
@dataclass(frozen=True, slots=True, init=False)
class RelationLock:
    """A lock the statement takes and holds until its transaction ends."""

    relation: str  # as regclass prints it: unqualified when on search_path
    mode: LockMode
    relkind: str = (
        "table"  # table, partitioned table, index, sequence, view, materialized view, ...
    )
    reason: str = ""

    def __init__(
        self, relation: str, mode: LockMode, relkind: str = "table", reason: str = ""
    ) -> None:
        _lock_relation(self, relation)
        _lock_mode(self, mode)
        _lock_relkind(self, relkind)
        _lock_reason(self, reason)


_lock_relation, _lock_mode, _lock_relkind, _lock_reason = (
    slot_setter(RelationLock, name) for name in RelationLock.__slots__
)


@dataclass(frozen=True, slots=True)
class TypeChange:
    """An ALTER COLUMN TYPE whose current type the model knew (catalog, the plan, or a
    framework's word), in the model's spelling: varchar(100) -> varchar(255)."""

    table: str
    column: str
    old: str
    new: str
    rewrites: bool


@dataclass(frozen=True, slots=True, init=False)
class Effects:
    """Everything the lock model knows about one statement."""

    locks: tuple[RelationLock, ...] = ()
    rewrites: tuple[str, ...] = ()  # relations whose storage is rewritten (new relfilenode)
    scans: tuple[str, ...] = ()  # relations read in full while the lock is held (validation)
    destroys: tuple[str, ...] = ()  # what data is lost: "table invoices", "column t.c", ...
    creates: tuple[str, ...] = ()  # relations the statement creates
    transactional: bool = True  # may run inside a transaction block
    assumptions: tuple[str, ...] = field(default=())  # what the model assumed, in words
    type_changes: tuple[TypeChange, ...] = ()  # column type changes from a known type
    # sub-commands the model knows have nothing to do: "DROP NOT NULL t.c" (already nullable)
    no_ops: tuple[str, ...] = ()

    def __init__(
        self,
        locks: tuple[RelationLock, ...] = (),
        rewrites: tuple[str, ...] = (),
        scans: tuple[str, ...] = (),
        destroys: tuple[str, ...] = (),
        creates: tuple[str, ...] = (),
        transactional: bool = True,
        assumptions: tuple[str, ...] = (),
        type_changes: tuple[TypeChange, ...] = (),
        no_ops: tuple[str, ...] = (),
    ) -> None:
        _locks(self, locks)
        _rewrites(self, rewrites)
        _scans(self, scans)
        _destroys(self, destroys)
        _creates(self, creates)
        _transactional(self, transactional)
        _assumptions(self, assumptions)
        _type_changes(self, type_changes)
        _no_ops(self, no_ops)

    def strongest(self) -> dict[str, LockMode]:
        """The strongest mode per relation."""
        out: dict[str, LockMode] = {}
        for lock in self.locks:
            if lock.mode > out.get(lock.relation, 0):
                out[lock.relation] = lock.mode
        return out

    def max_mode(self) -> LockMode | None:
        """The strongest mode over all relations, if any lock is taken."""
        return max((lk.mode for lk in self.locks), default=None)


(
    _locks,
    _rewrites,
    _scans,
    _destroys,
    _creates,
    _transactional,
    _assumptions,
    _type_changes,
    _no_ops,
) = (slot_setter(Effects, name) for name in Effects.__slots__)
