"""Ctrl-C (or SIGTERM) during apply: each press does more, and nothing hangs.

1. cancel the step (before the run starts or between steps: start nothing more, and say
   so): the run's watchdog cancels it and cleans up; if the run has
   not reacted within `NUDGE_S` (its connections may be cut off), the step's
   statement is cancelled through a new connection (bounded by a connect timeout);
2. end the step's backend (pg_terminate_backend, on a new connection), check in
   the server what it left (pg_stat_activity, the step's object), record the run
   as cancelled, print that, and exit 3;
3. exit 3 at once, saying the state was not checked.

Without a run to act on (no `dsn`), the second press raises KeyboardInterrupt in the
main thread. With `unwind=True` (code that is not pgwarden's executor, e.g. Django's
executor running a migration) that is the way the code running rolls back and reports;
a third press then exits 3 at once, as above.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import orjson

from pgwarden.cli import EXIT_APPLY, err, styled
from pgwarden.events import (
    Cancelled,
    Event,
    RunFinished,
    RunStarted,
    StepDone,
    StepFailed,
    StepStarted,
)
from pgwarden.threads import Background

__all__ = ["Interrupts", "ctrl_c_escalates"]

NUDGE_S = 2.0
RESUME_HINT = "`pgwarden resume` continues the run"
CONNECT_TIMEOUT_S = 5


class Interrupts:
    """Counts Ctrl-C presses and acts on the run it learnt from the events."""

    def __init__(
        self,
        cancel: threading.Event,
        dsn: str | None,
        journal_file: str | None,
        *,
        unwind: bool = False,
        resume_hint: str = RESUME_HINT,
    ) -> None:
        self.cancel = cancel
        self.dsn = dsn
        self.journal_file = journal_file
        self.unwind = unwind
        self.resume_hint = resume_hint
        self.run_id: str | None = None
        self.tracked = False  # `observe` sees the run's events (else what runs is unknown)
        self.running: tuple[int, ...] = ()  # the steps of the unit running now
        self.presses = 0
        self._ended = threading.Event()  # the run reacted: cancelled, failed or finished

    def observe(self, event: Event) -> None:
        """An observer: learns the run id and whether the run reacted."""
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
            self._ended.clear()
        elif isinstance(event, StepStarted):
            self.running = event.steps
        elif isinstance(event, StepDone):
            self.running = ()
        elif isinstance(event, Cancelled | StepFailed | RunFinished):
            self.running = ()
            self._ended.set()

    def stopping(self) -> str:
        """What the first Ctrl-C stops, as the events so far tell it."""
        if not self.tracked:
            return "cancelling the running step"
        if self.run_id is None:
            return "stopping before the run starts: nothing has changed"
        if self.running:
            first, last = self.running[0], self.running[-1]
            which = f"step {first}" if first == last else f"steps {first}-{last} (one transaction)"
            return f"cancelling the running {which}"
        if self._ended.is_set():
            return "stopping: the run is ending"
        return "stopping before the next step starts (the steps done stay applied)"

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1
        if self.presses == 1:
            self.cancel.set()
            err.print(styled("[yellow]{} (Ctrl-C again to end it)...[/]", self.stopping()))
            if self.dsn is not None:
                Background(target=self._nudge, name="pgwarden-nudge", daemon=True).start()
            return
        if self.dsn is None:
            if not self.unwind:
                raise KeyboardInterrupt
            if self.presses == 2:
                err.print(styled("[yellow]stopping it (Ctrl-C again to exit at once)...[/]"))
                raise KeyboardInterrupt
            self._exit("aborted at once; what the step left was not checked")
            return
        if self.presses == 2 and self.run_id is not None:
            err.print(
                styled("[yellow]ending the step's backend (Ctrl-C again to exit at once)...[/]")
            )
            said: list[str] = []
            worker = Background(target=lambda: said.append(self._stop(terminate=True)), daemon=True)
            worker.start()
            worker.join(CONNECT_TIMEOUT_S + 20)  # a third Ctrl-C interrupts this wait
            self._exit(said[0] if said else "the server did not answer in time; state unknown")
        if self.presses == 2:
            self._exit("interrupted before the run started: nothing was changed", code=2)
        self._exit(
            "aborted at once; what the step left was not checked"
            + (f": `pgwarden status` shows run {self.run_id}" if self.run_id else "")
        )

    def _nudge(self) -> None:
        """If the run has not reacted to the cancel, cancel its statement ourselves."""
        if self._ended.wait(NUDGE_S) or self.run_id is None:
            return
        said = self._stop(terminate=False)
        if not self._ended.is_set():
            err.print(styled("  [yellow]the run did not react:[/] {}", said))

    def _stop(self, *, terminate: bool) -> str:
        from pgwarden.apply.cancel import stop_run_backend

        assert self.dsn is not None and self.run_id is not None
        return stop_run_backend(
            self.dsn, self.run_id, terminate=terminate, connect_timeout_s=CONNECT_TIMEOUT_S
        )

    def _exit(self, message: str, code: int = EXIT_APPLY) -> None:
        run = f"run {self.run_id} " if self.run_id else ""
        text = f"{run}interrupted: {message}"
        self._journal(text)
        err.print(styled("[bold red]pgwarden: error:[/] {}", text))
        if self.run_id:
            err.print(styled("  [dim]hint:[/] {}", self.resume_hint))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # the run's own connections may hang for ever: do not wait for them

    def _journal(self, text: str) -> None:
        if not (self.journal_file and self.run_id):
            return
        from pgwarden.apply.local_journal import append_line

        line = {
            "run": self.run_id,
            "event": "cancelled",
            "step": None,
            "at": time.time(),
            "why": text,
        }
        try:
            append_line(Path(self.journal_file), orjson.dumps(line) + b"\n")
        except OSError as exc:
            err.print(f"  (the local journal could not be written: {exc.strerror or exc})")


@contextmanager
def ctrl_c_escalates(
    cancel: threading.Event,
    dsn: str | None = None,
    journal_file: str | None = None,
    *,
    unwind: bool = False,
    resume_hint: str = RESUME_HINT,
) -> Iterator[Interrupts]:
    """Install the escalating Ctrl-C / SIGTERM handler for the block (`resume_hint`: how to
    go on after an interrupted run)."""
    interrupts = Interrupts(cancel, dsn, journal_file, unwind=unwind, resume_hint=resume_hint)
    old_int = signal.signal(signal.SIGINT, interrupts.handler)
    old_term = signal.signal(signal.SIGTERM, interrupts.handler)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
