"""drizzle-kit migrations: drizzle runs them in one transaction.

drizzle-orm's PostgreSQL migrator (`PgDialect.migrate`) runs every pending migration,
statement by statement, inside one `session.transaction(...)`: a statement that cannot
run in a transaction block (`CREATE INDEX CONCURRENTLY`) always fails there. A drizzle
migration is a `.sql` file next to drizzle-kit's `meta/_journal.json`, or one whose
statements are cut by `--> statement-breakpoint` lines.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["is_drizzle_file"]

BREAKPOINT = "--> statement-breakpoint"


def is_drizzle_file(path: str, text: str) -> bool:
    """Whether `path` is a drizzle-kit migration (see the module's docstring)."""
    return BREAKPOINT in text or _journal_beside(str(Path(path).parent))


@lru_cache(maxsize=256)
def _journal_beside(folder: str) -> bool:
    return (Path(folder) / "meta" / "_journal.json").is_file()
