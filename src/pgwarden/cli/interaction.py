"""What a command running a migration does at the terminal, public for contrib.

The CLI commands and the Django command (`manage.py pgwarden migrate`) use the
same three pieces: the typed confirmation prompt, escalating Ctrl-C handling,
and an observer printing events (human lines, or JSON lines for
`--log-format json`).
"""

from __future__ import annotations

import io
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import click
import orjson

from pgwarden.cli import err
from pgwarden.cli.interrupts import Interrupts, ctrl_c_escalates
from pgwarden.errors import InputError
from pgwarden.events import Event, Observer, fan_out
from pgwarden.report.events import render

__all__ = [
    "Interrupts",
    "confirm_prompt",
    "ctrl_c_cancels",
    "event_printer",
    "require_stdin",
    "run_observer",
    "stdin",
    "unreadable_stdin",
]


def stdin() -> BinaryIO:
    """Standard input, as bytes; every read of it and every "is it a terminal?" goes here.

    With file descriptor 0 closed (`<&-`, as some CI runners start jobs) Python sets
    `sys.stdin` to None; that reads as /dev/null does: empty, and not a terminal.
    """
    if sys.stdin is None:
        return io.BytesIO()
    return sys.stdin.buffer


def unreadable_stdin() -> str | None:
    """Why standard input cannot be read (closed, or opened for writing only); None if it
    can. Nothing is read."""
    if sys.stdin is None:
        return "closed"
    try:
        import fcntl

        flags = fcntl.fcntl(sys.stdin.fileno(), fcntl.F_GETFL)
    except (ImportError, OSError, ValueError):  # no fcntl (Windows), or no descriptor
        return None
    return "open for writing only" if flags & os.O_ACCMODE == os.O_WRONLY else None


def require_stdin(paths: Iterable[str], command: str) -> None:
    """`InputError` when `-` is among `paths` and standard input cannot be read: a closed
    stdin (`<&-`) would otherwise read as an empty file."""
    if "-" not in paths or (why := unreadable_stdin()) is None:
        return
    raise InputError(
        f"standard input is {why}: there is no SQL to read from -",
        hint=f"give the SQL as a file path (pgwarden {command} migration.sql), or pipe it in "
        f"(pgwarden {command} - < migration.sql)",
    )


def confirm_prompt() -> Callable[[str], str] | None:
    """Asks for the database name on a terminal; None (no prompt possible) otherwise.

    Ctrl-C at the prompt ends it at once (click's `Abort`: nothing has run yet), not the
    escalating "cancel the running step" of the run's handler, which would leave the
    prompt waiting.
    """
    if not stdin().isatty():
        return None

    def ask(dbname: str) -> str:
        with _plain_ctrl_c():
            try:
                while True:  # an empty answer asks again, as click.prompt does
                    click.echo(
                        f"Type the database name ({dbname}) to confirm: ", err=True, nl=False
                    )
                    answer = _read_line()
                    if answer:
                        return answer
            except KeyboardInterrupt:
                raise click.Abort() from None

    return ask


def _read_line() -> str:
    """One line from the terminal, waiting in short polls: Ctrl-C pressed just as the
    prompt appears (before a blocking read has started) would otherwise wait for Enter,
    its handler running only when the read returns. EOF (Ctrl-D) is an interruption."""
    stream = stdin()
    fd = stream.fileno()
    while not select.select([fd], [], [], 0.2)[0]:
        pass  # between polls Python runs the Ctrl-C handler
    line = stream.readline()
    if not line:
        raise KeyboardInterrupt
    return line.decode(errors="replace").strip()


@contextmanager
def _plain_ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in the block (the main thread's default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextmanager
def ctrl_c_cancels(
    cancel: threading.Event, dsn: str | None = None, journal_file: str | None = None
) -> Iterator[Interrupts]:
    """First Ctrl-C (or SIGTERM) cancels the running step cleanly; with `dsn`, a second ends
    its backend and reports what it left, a third exits at once (see `interrupts`)."""
    with ctrl_c_escalates(cancel, dsn, journal_file) as interrupts:
        yield interrupts


def event_printer(fmt: str = "text") -> Observer:
    """An observer printing each event on stderr: human lines, or JSON lines (`json`)."""

    def show(event: Event) -> None:
        if fmt == "json":
            sys.stderr.buffer.write(orjson.dumps(event.to_dict(), default=str) + b"\n")
            sys.stderr.flush()
            return
        for line in render(event):
            err.print(line)

    return show


def run_observer(interrupts: Interrupts, fmt: str = "text") -> Observer:
    """The Ctrl-C handler learns the run from the events; then they are printed."""
    interrupts.tracked = True
    return fan_out([interrupts.observe, event_printer(fmt)])
