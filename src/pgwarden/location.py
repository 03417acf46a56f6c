"""Where a piece of SQL came from: path, 1-based line and column."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["LineIndex", "SourceLocation", "line_col"]


@dataclass(frozen=True, slots=True, init=False)
class SourceLocation:
    """A position in a source file (1-based line and column; column counts characters)."""

    path: str
    line: int
    column: int

    # One per statement: each slot set through its own setter, a third of the frozen
    # dataclass __init__'s cost per field (object.__setattr__ looked up by name).
    def __init__(self, path: str, line: int, column: int) -> None:
        _path(self, path)
        _line(self, line)
        _column(self, column)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


_path, _line, _column = (SourceLocation.__dict__[name].__set__ for name in SourceLocation.__slots__)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character `offset` in `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


class LineIndex:
    """Line starts of a text, for many offset -> (line, column) look-ups in O(log n)."""

    __slots__ = ("_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        starts = [0]
        pos = text.find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = text.find("\n", pos + 1)
        self._starts = starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of character `offset`."""
        offset = max(0, min(offset, len(self._text)))
        line = bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1
