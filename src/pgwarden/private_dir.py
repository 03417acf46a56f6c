"""Directories pgwarden writes its journals and records in, readable by their owner only."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_private_dir"]


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents 0700 (`Path.mkdir(parents=True)` gives the
    parents the umask's mode: `.pgwarden/` came out 0755). Existing ones are left as they are."""
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
