"""Which Go migration library a project uses, from the nearest `go.mod`.

`*.up.sql` files are golang-migrate's, bun's, sqlx's (Rust) or morph's; they run
differently: golang-migrate sends the file as one query (one statement: outside any
transaction); bun too, or each part between `--bun:split` lines as one, and in a
transaction only a `*.tx.up.sql`; sqlx and morph wrap it in a transaction, and
maragudk/migrate always does. The `go.mod`
above the file names the library the project requires.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["go_migration_library"]

_LIBRARIES = {
    "github.com/golang-migrate/migrate": "golang-migrate",
    "github.com/mattermost/morph": "morph",
    "github.com/uptrace/bun": "bun",
    "github.com/maragudk/migrate": "maragudk/migrate",
    "maragu.dev/migrate": "maragudk/migrate",
}
_LEVELS = 8  # folders walked up at most


def go_migration_library(path: str) -> str | None:
    """The library ("golang-migrate", "morph", "bun", "maragudk/migrate") when the nearest
    go.mod above `path` requires exactly one of them (None: no go.mod up to the repository
    root, none of them, or several)."""
    try:
        folder = Path(path).resolve().parent
    except OSError:
        return None
    return _library_of(folder)


@lru_cache(maxsize=256)
def _library_of(folder: Path) -> str | None:
    for here in [folder, *folder.parents][:_LEVELS]:
        mod = here / "go.mod"
        if mod.is_file():
            try:
                text = mod.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            found = {tool for module, tool in _LIBRARIES.items() if module in text}
            return found.pop() if len(found) == 1 else None
        if (here / ".git").exists():
            return None
    return None
