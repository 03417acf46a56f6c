"""Schema facts the lock model needs when the SQL alone cannot tell.

(Initial contract; the lock-model work fills this in.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Catalog"]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Tables, indexes, constraints of one database."""
