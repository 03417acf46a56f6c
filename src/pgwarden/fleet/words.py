"""Counts in fleet messages: `1 target`, `2 targets` (never `1 targets`)."""

from __future__ import annotations

__all__ = ["count"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, singular for exactly one."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
