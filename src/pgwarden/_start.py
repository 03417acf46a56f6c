"""Ctrl-C while the `pgwarden` command is still starting (importing its modules).

Imported first by the package, so that a press during the imports of the CLI ends it
with the one-line message and exit code 2 of any interrupt before anything changed,
not a Python traceback. Only when this process is the `pgwarden` command (the console
script, or `python -m pgwarden`): a program importing pgwarden as a library keeps its
own Ctrl-C handling. `pgwarden.cli.main` hands Ctrl-C back to Python's handler once the
imports are done. Cheap on purpose: `os` and `sys` are loaded already, `signal` is small.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["as_usual"]

_MESSAGE = (
    b"pgwarden: error: interrupted\n  hint: nothing was left running; run the command again\n"
)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """Say it and exit 2 at once: the command has not started, nothing has changed."""
    try:
        os.write(2, _MESSAGE)
    finally:
        os._exit(2)


def _is_the_command() -> bool:
    """This process runs the `pgwarden` console script or `python -m pgwarden`."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":  # `python -m pgwarden`, while runpy imports the package
        orig: list[str] = getattr(sys, "orig_argv", [])
        return "pgwarden" in orig and orig[orig.index("pgwarden") - 1] == "-m"
    return os.path.basename(argv0) == "pgwarden"


def as_usual() -> None:
    """Give Ctrl-C back to Python's handler (KeyboardInterrupt), if this module took it."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _take() -> None:
    # only over Python's own handler: a SIGINT ignored by the parent stays ignored
    if _is_the_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            signal.signal(signal.SIGINT, _interrupted)
        except ValueError:  # imported outside the main thread: not the command starting
            return


_take()
