"""Background threads that leave Ctrl-C and SIGTERM to the main thread.

The kernel delivers a process-directed signal to any thread that does not block it.
Python runs signal handlers only in the main thread, and only between bytecodes: when
the signal lands on a background thread while the main thread is blocked in a read (a
confirmation prompt, `input()`), the read is not interrupted and the handler never
runs, so Ctrl-C seems ignored. A `Background` thread blocks both signals for itself, so
they reach the main thread.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["Background"]

_MAIN_ONLY = frozenset({signal.SIGINT, signal.SIGTERM})


class Background(threading.Thread):
    """A `threading.Thread` in which SIGINT and SIGTERM are blocked."""

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_ONLY)
        super().run()
