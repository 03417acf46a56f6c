"""`attach`: the notifier of one command, an observer to fan out with the others.

```python
with notify.attach(settings, command="backup verify", database_url=dsn) as notifier:
    result = api.verify(..., observer=fan_out([progress, notifier]))
    if not result.ok:
        notifier.finish("failed", result.message)
```

On entry it sends `started` (apply and resume: on their `RunStarted` event);
on exit the outcome: what the events said (`RunFinished`, `FleetHalted`), else
what `finish` was told, else the exception leaving the block (Ctrl-C is
`cancelled`, an error `failed`), else `done`. Then it waits at most
`exit_wait_s` for delivery and prints one warning line per webhook that did
not get everything. Nothing in here raises into the command or changes its
exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from pgwarden.errors import PgwardenError
from pgwarden.events import Event, RunStarted
from pgwarden.notify.body import RunContext, encode
from pgwarden.notify.config import NotifyConfig, load_notify_config
from pgwarden.notify.events import Notification, Tracker
from pgwarden.settings import Settings
from pgwarden.threads import Background

if TYPE_CHECKING:
    from pgwarden.notify.sender import Delivery, Sender

__all__ = ["Notifier", "attach", "rehearsed_durations"]

TICK_S = 0.25
# Commands whose `started` waits for their run to begin (after guards and confirmation).
_ANNOUNCED_BY: dict[str, type[Event]] = {"apply": RunStarted, "resume": RunStarted}


def rehearsed_durations(fingerprint: str, directory: Path | None = None) -> dict[int, float]:
    """Step index -> seconds from the completed rehearsal record of plan `fingerprint`.

    Reads `.pgwarden/rehearsals/<fingerprint>.json` (or `$PGWARDEN_REHEARSALS`),
    the file `pgwarden rehearse` writes; empty when there is none.
    """
    folder = directory or Path(
        os.environ.get("PGWARDEN_REHEARSALS") or Path(".pgwarden") / "rehearsals"
    )
    try:
        data = orjson.loads((folder / f"{fingerprint}.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("status") != "completed":
        return {}
    if data.get("fingerprint") != fingerprint:
        return {}
    out: dict[int, float] = {}
    for step in data.get("steps") or []:
        try:
            out[int(step["index"])] = float(step["duration_s"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


class Notifier:
    """An observer turning one command's events into webhook notifications."""

    def __init__(
        self,
        config: NotifyConfig,
        context: RunContext,
        *,
        expected: Callable[[str], Mapping[int, float]] | None = rehearsed_durations,
    ) -> None:
        self.config = config
        self.context = context
        self._lock = threading.Lock()
        self._tracker = Tracker(
            context.command,
            stuck_after_s=config.stuck_after_s,
            stuck_factor=config.stuck_factor,
            progress_every_s=config.progress_every_s,
            announce_on=_ANNOUNCED_BY.get(context.command),
            expected=expected,
        )
        self._sender: Sender | None = None
        if config.enabled:
            from pgwarden.notify.sender import Sender  # urllib and ssl only when sending

            self._sender = Sender(config.webhooks)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.sent: list[Notification] = []  # what was handed to the sender, in order

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    def __call__(self, event: Event) -> None:
        if self._sender is None:
            return
        try:
            with self._lock:
                self._send(self._tracker.observe(event))
        except Exception:  # a notifier never breaks the run
            pass

    def finish(self, kind: str | None, message: str | None = None) -> None:
        """The command's outcome: done, failed or cancelled (None: done unless known)."""
        if self._sender is None:
            return
        with self._lock:
            self._send(self._tracker.finish(kind, message or ""))

    def _send(self, notifications: list[Notification]) -> None:
        assert self._sender is not None
        t = self._tracker
        run = {"environment": t.environment, "database": t.database}
        env = t.environment or self.context.environment
        for n in notifications:
            self.sent.append(n)
            for hook in self.config.webhooks:
                if hook.wants(n.kind, env):
                    self._sender.submit(hook, n.kind, encode(hook.format, n, self.context, run))

    def _watch(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                with self._lock:
                    self._send(self._tracker.tick())
            except Exception:  # a notifier never breaks the run
                pass

    def start(self) -> None:
        if self._sender is None:
            return
        with self._lock:
            self._send(self._tracker.start())
        self._watcher = Background(target=self._watch, name="pgwarden-notify-watch")
        self._watcher.daemon = True
        self._watcher.start()

    def close(self) -> list[Delivery]:
        """Stop watching; wait at most `exit_wait_s` for delivery; what each webhook got."""
        if self._sender is None:
            return []
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(1.0)
        return self._sender.close(self.config.exit_wait_s)


def _outcome(exc: BaseException, cancel: threading.Event | None) -> tuple[str | None, str]:
    """The notification kind of a command left by `exc`."""
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled", "interrupted"
    if isinstance(exc, SystemExit):
        if exc.code in (0, None):
            return None, ""
        return "failed", f"exit code {exc.code}"
    if cancel is not None and cancel.is_set():
        return "cancelled", exc.message if isinstance(exc, PgwardenError) else ""
    if isinstance(exc, PgwardenError):
        return "failed", exc.message
    return "failed", f"internal error: {type(exc).__name__}"


def _stderr(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing to tell
        sys.stderr.write(f"warning: {text}\n")
        sys.stderr.flush()


@contextmanager
def attach(
    settings: Settings,
    *,
    command: str,
    env: str | None = None,
    database_url: str | None = None,
    cancel: threading.Event | None = None,
    warn: Callable[[str], None] = _stderr,
) -> Iterator[Notifier]:
    """The notifier of `command` for the block (see the module docstring).

    `env` and `database_url` name the target in the bodies (the database name and
    server only); `cancel` is the command's cancel flag: set at the end, the
    outcome is `cancelled`. With no webhook configured, the notifier does nothing.
    """
    config = load_notify_config(settings)
    for problem in config.problems:
        warn(problem)
    notifier = Notifier(config, RunContext.of(command, env, database_url))
    if not notifier.enabled:
        yield notifier
        return
    notifier.start()
    try:
        yield notifier
    except BaseException as exc:
        kind, message = _outcome(exc, cancel)
        _finish_quietly(notifier, kind, message)
        _close(notifier, warn)
        raise
    if cancel is not None and cancel.is_set():
        _finish_quietly(notifier, "cancelled", "")
    _finish_quietly(notifier, None, "")
    _close(notifier, warn)


def _finish_quietly(notifier: Notifier, kind: str | None, message: str) -> None:
    with contextlib.suppress(Exception):  # a notifier never breaks the run
        notifier.finish(kind, message)


def _close(notifier: Notifier, warn: Callable[[str], None]) -> None:
    try:
        deliveries = notifier.close()
    except Exception:
        return
    for d in deliveries:
        if d.undelivered:
            why = f": {d.last_error}" if d.last_error else " (no answer in time)"
            total = d.undelivered
            warn(f"{total} notification{'s' if total != 1 else ''} not delivered to {d.label}{why}")
