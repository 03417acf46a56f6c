"""What a statement does to the database: locks, rewrites, scans, destruction.

These are plain frozen values produced by the lock model (`analysis.locks`)
and consumed by lint, rehearse and apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

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


@dataclass(frozen=True, slots=True)
class RelationLock:
    """A lock the statement takes and holds until its transaction ends."""

    relation: str  # as regclass prints it: unqualified when on search_path
    mode: LockMode
    relkind: str = (
        "table"  # table, partitioned table, index, sequence, view, materialized view, ...
    )
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TypeChange:
    """An ALTER COLUMN TYPE whose current type the model knew (catalog, the plan, or a
    framework's word), in the model's spelling: varchar(100) -> varchar(255)."""

    table: str
    column: str
    old: str
    new: str
    rewrites: bool


@dataclass(frozen=True, slots=True)
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
