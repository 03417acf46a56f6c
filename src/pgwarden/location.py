"""Where a piece of SQL came from: path, 1-based line and column."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SourceLocation", "line_col"]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A position in a source file (1-based line and column; column counts characters)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character `offset` in `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1
