"""ASGI middleware: shed database-bound requests with a fast 503 + Retry-After.

Works with any ASGI app (Starlette, FastAPI, Django's ASGI handler). Each HTTP request
not matching `exempt_paths` runs inside a guard scope: when the breaker is open or the
limit is reached the client gets 503 at once and the database is not touched. A
database failure escaping the app before it responded also becomes a 503. With
`cancel_on_disconnect` (default) a request whose client goes away before the response
starts is cancelled, so its connection and slot go back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from pgwarden.guard.classify import Outcome
from pgwarden.guard.core import Guard
from pgwarden.guard.errors import Shed
from pgwarden.guard.responses import shed_body, shed_headers

__all__ = ["ASGIApp", "GuardMiddleware"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIScope = MutableMapping[str, Any]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]

_DISCONNECT: Message = {"type": "http.disconnect"}


async def _send_503(send: Send, exc: BaseException) -> None:
    body = shed_body(exc)
    headers = [(k.encode(), v.encode()) for k, v in shed_headers(exc, body)]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class GuardMiddleware:
    """Wrap an ASGI app so that database-bound requests pass a `Guard` first."""

    def __init__(
        self,
        app: ASGIApp,
        guard: Guard,
        *,
        exempt_paths: Iterable[str] = (),
        exempt: Callable[[ASGIScope], bool] | None = None,
        cancel_on_disconnect: bool = True,
    ) -> None:
        self.app = app
        self.guard = guard
        self.exempt_paths = tuple(exempt_paths)
        self.exempt = exempt
        self.cancel_on_disconnect = cancel_on_disconnect

    def _is_exempt(self, scope: ASGIScope) -> bool:
        path = str(scope.get("path", ""))
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exempt_paths):
            return True
        return self.exempt is not None and self.exempt(scope)

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope):
            await self.app(scope, receive, send)
            return
        try:
            gscope = await self.guard.enter_async()
        except Shed as exc:
            await _send_503(send, exc)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if self.cancel_on_disconnect:
                await self._run_cancellable(scope, receive, tracked_send, lambda: started)
            else:
                await self.app(scope, receive, tracked_send)
        except _ClientGone:
            gscope.finish(asyncio.CancelledError())
            return
        except Exception as exc:
            outcome = gscope.finish(exc)
            if not started and (outcome is Outcome.FAILURE or isinstance(exc, Shed)):
                await _send_503(send, exc)
                return
            raise
        except BaseException as exc:
            gscope.finish(exc)
            raise
        gscope.finish()

    async def _run_cancellable(
        self, scope: ASGIScope, receive: Receive, send: Send, started: Callable[[], bool]
    ) -> None:
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        gone = False

        async def pump() -> None:
            nonlocal gone
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone = True
                    inbox.put_nowait(message)
                    return
                inbox.put_nowait(message)

        async def app_receive() -> Message:
            if gone and inbox.empty():
                return dict(_DISCONNECT)
            return await inbox.get()

        app_task = asyncio.ensure_future(self.app(scope, app_receive, send))
        pump_task = asyncio.ensure_future(pump())
        try:
            waiting: set[asyncio.Future[None]] = {app_task, pump_task}
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if app_task in done:
                    break
                waiting = {app_task}
                if gone and not started():
                    app_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await app_task
                    # The client is gone: nothing to answer; report as ignored.
                    raise _ClientGone
            app_task.result()
        finally:
            for task in (pump_task, app_task):
                if not task.done():
                    task.cancel()
            for task in (pump_task, app_task):
                if not task.done():
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task


class _ClientGone(Exception):
    """The client disconnected before the response started."""
