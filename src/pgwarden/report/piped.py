"""Consoles for a terminal and for a file or a CI log (stdout not a terminal).

Without a terminal there is no width to fit, and rich's default of 80 columns split a
statement or a lock list into one- or two-word cells. A log console lays tables and
panels out at the width they need, up to `piped_width()`; a table wider than that is
printed one line per row (`header: value | ...`) so that each row stays whole for grep.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

__all__ = ["PIPED_WIDTH", "LogConsole", "make_console", "piped_width"]

PIPED_WIDTH = 200


def piped_width() -> int:
    """The width for output that is not a terminal: $COLUMNS if set, else PIPED_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


class LogConsole(Console):
    """A Console for a file or a CI log: lines never hard-wrapped, wide tables one row a line."""

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        if isinstance(renderable, Table):
            opts = options or self.options
            rows = _rows(self, renderable)
            if rows is not None and _needed_width(self, opts, renderable) > opts.max_width:
                renderable = rows
        return super().render(renderable, options)


def make_console(**options: Any) -> Console:
    """A rich Console on `options`; a `LogConsole` when its file is not a terminal."""
    console = Console(**options)
    if console.is_terminal:
        return console
    options.update(soft_wrap=True, width=piped_width())
    return LogConsole(**options)


def _needed_width(console: Console, options: ConsoleOptions, table: Table) -> int:
    unbounded = options.update_width(max(options.max_width, 100_000))
    return Measurement.get(console, unbounded, table).maximum


def _plain(console: Console, cell: RenderableType) -> str | None:
    if isinstance(cell, str):
        text = console.render_str(cell).plain
    elif isinstance(cell, Text):
        text = cell.plain
    else:
        return None
    return " ".join(text.split())


def _rows(console: Console, table: Table) -> RenderableType | None:
    """`table` as one Text line per row, or None if a header or cell is not plain text."""
    headers = [_plain(console, column.header) for column in table.columns]
    columns = [[_plain(console, cell) for cell in column.cells] for column in table.columns]
    if not table.show_header or None in headers or any(None in col for col in columns):
        return None
    lines: list[Text] = []
    if table.title is not None:
        title = _plain(console, table.title)
        if title:
            lines.append(Text(title))
    for values in zip(*columns, strict=True):
        fields = []
        for header, value in zip(headers, values, strict=True):
            if not value:
                continue
            fields.append(
                f"#{value}" if header == "#" else f"{header}: {value}" if header else str(value)
            )
        lines.append(Text(" | ".join(fields)))
    return Group(*lines)
