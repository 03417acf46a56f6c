"""Delivery in the background: one thread and one bounded queue per webhook.

`submit` never blocks and never raises. Each body is POSTed with a per-request
timeout and retried on a connection error, a timeout, HTTP 429 or 5xx, with
exponential backoff and full jitter; any other status is final. When the queue
is full the oldest `progress` body is dropped first. `close(wait_s)` waits at
most `wait_s` seconds in all for what is queued, then gives up on the rest: the
threads are daemons, so a receiver that never answers cannot hold the process.
Errors are described without the URL (`webhook #1 (SLACK_WEBHOOK_URL): HTTP 500`).
Credentials in the URL (`https://user:token@relay/hook`) go in an `Authorization: Basic`
header, as curl sends them: urllib would take them for part of the host name.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from typing import IO
from urllib.parse import unquote, urlsplit, urlunsplit

from pgwarden.notify.config import Webhook
from pgwarden.threads import Background

__all__ = ["Delivery", "Sender", "post_once"]

QUEUE_SIZE = 100
ATTEMPTS = 5
BACKOFF_S = 0.5  # first retry after up to this long, doubling
BACKOFF_CAP_S = 30.0
_USER_AGENT = "pgwarden-notify/1"
_REFUSED, _NO_HOST = "connection refused", "the host name does not resolve"


@dataclass(slots=True)
class Delivery:
    """What happened to one webhook's notifications."""

    label: str
    sent: int = 0
    failed: int = 0  # gave up after the retries, or a final HTTP status
    dropped: int = 0  # pushed out of a full queue
    left: int = 0  # still queued (or in flight) when the exit wait ran out
    last_error: str | None = None

    @property
    def undelivered(self) -> int:
        return self.failed + self.dropped + self.left


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would drop the body (or resend it elsewhere)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _describe(exc: BaseException) -> tuple[str, bool]:
    """(what went wrong, without the URL; whether a retry may help)."""
    if isinstance(exc, urllib.error.HTTPError):
        code = exc.code
        return f"HTTP {code}", code == 429 or code >= 500
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "no answer within the timeout", True
    if isinstance(reason, socket.gaierror):
        return _NO_HOST, True
    if isinstance(reason, ConnectionRefusedError):
        return _REFUSED, True
    if isinstance(reason, OSError) and reason.errno is not None:
        return f"{errno.errorcode.get(reason.errno, 'error')} ({reason.strerror})", True
    return type(reason).__name__, True


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, urllib.error.HTTPError) and exc.headers is not None:
        value = exc.headers.get("Retry-After")
        if value and value.strip().isdigit():
            return min(float(value), BACKOFF_CAP_S)
    return None


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """(`url` without its user:password@, the Authorization header they make, if any)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    bare = urlunsplit(parts._replace(netloc=hostport))
    return bare, {"Authorization": f"Basic {token}"}


def post_once(
    hook: Webhook, body: bytes, timeout_s: float
) -> tuple[str, bool, float | None] | None:
    """POST `body` to `hook` once: None when delivered (2xx), else (what went wrong without
    the URL, whether a retry may help, the Retry-After the receiver asked for)."""
    assert hook.url is not None
    try:
        url, auth = _split_credentials(hook.url)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": _USER_AGENT, **auth},
        )
        with _OPENER.open(request, timeout=max(timeout_s, 0.05)) as response:
            response.read(65536)
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error, retry = _describe(exc)
        return error, retry, _retry_after(exc)
    except Exception as exc:  # a notifier never breaks the run
        return type(exc).__name__, False, None


@dataclass(slots=True)
class _Item:
    kind: str
    body: bytes


@dataclass(slots=True)
class _Target:
    hook: Webhook
    delivery: Delivery
    queue: deque[_Item] = field(default_factory=deque)
    busy: bool = False
    thread: threading.Thread | None = None


class Sender:
    """Background delivery to `hooks` (see the module docstring)."""

    def __init__(self, hooks: tuple[Webhook, ...], *, queue_size: int = QUEUE_SIZE) -> None:
        self._targets = [_Target(h, Delivery(h.label)) for h in hooks if h.url is not None]
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._closing = False
        self._deadline: float | None = None

    def submit(self, hook: Webhook, kind: str, body: bytes) -> None:
        """Queue `body` for `hook`; returns at once, whatever the receiver does."""
        target = next((t for t in self._targets if t.hook is hook), None)
        if target is None:
            return
        with self._cond:
            if self._closing:
                target.delivery.dropped += 1
                return
            if len(target.queue) >= self._queue_size:
                old = next((i for i in target.queue if i.kind == "progress"), target.queue[0])
                target.queue.remove(old)
                target.delivery.dropped += 1
            target.queue.append(_Item(kind, body))
            if target.thread is None:
                target.thread = Background(
                    target=self._run, args=(target,), name="pgwarden-notify", daemon=True
                )
                target.thread.start()
            self._cond.notify_all()

    def _remaining(self) -> float | None:
        """Seconds left before the exit deadline (None: no deadline yet)."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _run(self, target: _Target) -> None:
        while True:
            with self._cond:
                while not target.queue and not self._closing:
                    self._cond.wait()
                if not target.queue:
                    return
                item = target.queue.popleft()
                target.busy = True
            ok, error = self._deliver(target, item)
            with self._cond:
                target.busy = False
                if ok:
                    target.delivery.sent += 1
                elif error is not None:  # None: abandoned at the deadline, counted by close
                    target.delivery.failed += 1
                    target.delivery.last_error = error
                else:
                    target.delivery.left += 1
                self._cond.notify_all()

    def _deliver(self, target: _Target, item: _Item) -> tuple[bool, str | None]:
        """(delivered, the last error); (False, None) when the exit deadline ended it."""
        hook = target.hook
        assert hook.url is not None
        error = "not sent"
        for attempt in range(ATTEMPTS):
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                return False, None
            timeout = hook.timeout_s if remaining is None else min(hook.timeout_s, remaining)
            failure = post_once(hook, item.body, timeout)
            if failure is None:
                return True, None
            error, retry, pause = failure
            with self._cond:
                target.delivery.last_error = error
            if not retry:
                return False, error
            if self._remaining() is not None and error in (_REFUSED, _NO_HOST):
                return False, None  # closing, and the receiver is down: no use waiting
            if attempt + 1 == ATTEMPTS:
                break
            cap = min(BACKOFF_CAP_S, BACKOFF_S * 2**attempt)
            wait = pause if pause is not None else random.uniform(0, cap)
            until = time.monotonic() + wait

            def hopeless(until: float = until) -> bool:
                """Closing, and the retry would come after the deadline (or it passed)."""
                remaining = self._remaining()
                return remaining is not None and until - time.monotonic() >= remaining

            with self._cond:
                if self._cond.wait_for(hopeless, timeout=wait):
                    return False, None  # counted as left by `close`
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            return False, None
        return False, error

    def close(self, wait_s: float) -> list[Delivery]:
        """Stop taking notifications, wait at most `wait_s` for the queues; the outcome."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + wait_s
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: all(not t.queue and not t.busy for t in self._targets),
                timeout=max(wait_s, 0.0) + 0.2,
            )
            for t in self._targets:
                t.delivery.left += len(t.queue) + (1 if t.busy else 0)
                t.queue.clear()
                t.busy = False  # the thread may still be blocked in a request; it is a daemon
            return [dataclasses.replace(t.delivery) for t in self._targets]
