"""Where each operation of an Alembic `batch_alter_table` block was called.

Alembic queues a batch's operations and runs them when the `with` block ends, so
their SQL is written from the `with` line. While `recording()` is active, each
queued operation keeps the call stack it was queued from, and `origin(frame)`
gives that stack for the `flush` frame that runs the operation.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

Stack = tuple[tuple[str, int], ...]  # (file, line), innermost first


class _Queued(list[Any]):
    """A batch's queue of (opname, args, kwargs), with the stack each was queued from."""

    def __init__(self) -> None:
        super().__init__()
        self.stacks: dict[int, Stack] = {}

    def append(self, item: Any) -> None:
        super().append(item)
        stack: list[tuple[str, int]] = []
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            stack.append((frame.f_code.co_filename, frame.f_lineno))
            frame = frame.f_back
        self.stacks[id(item)] = tuple(stack)


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """Batches made inside this block record where each operation was queued from."""
    from alembic.operations.batch import BatchOperationsImpl

    init: Any = BatchOperationsImpl.__init__

    def queued_init(self: Any, *args: Any, **kw: Any) -> None:
        init(self, *args, **kw)
        self.batch = _Queued()

    BatchOperationsImpl.__init__ = queued_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        BatchOperationsImpl.__init__ = init  # type: ignore[method-assign]


def origin(frame: FrameType) -> Stack:
    """The stack the operation that `frame` runs was queued from, when `frame` is a
    recorded batch's `flush`; else ()."""
    if frame.f_code.co_name != "flush":
        return ()
    local = frame.f_locals
    queue = getattr(local.get("self"), "batch", None)
    if not isinstance(queue, _Queued) or "kw" not in local:
        return ()
    for item in queue:
        if item[1] is local.get("arg") and item[2] is local["kw"]:
            return queue.stacks.get(id(item), ())
    return ()
