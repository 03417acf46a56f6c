"""WSGI middleware: the synchronous counterpart of `GuardMiddleware` (Django, Flask).

The scope stays active while the response iterable is consumed and ends on its
`close()`, so streamed responses that read from the database are covered too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from pgwarden.guard.classify import Outcome
from pgwarden.guard.core import Guard, Scope
from pgwarden.guard.errors import Shed
from pgwarden.guard.responses import shed_body, shed_headers

__all__ = ["GuardWSGIMiddleware"]

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def _respond_503(start_response: StartResponse, exc: BaseException) -> list[bytes]:
    body = shed_body(exc)
    start_response("503 Service Unavailable", shed_headers(exc, body))
    return [body]


class _ScopedBody:
    """Iterates the app's body inside the scope; finishes the scope on close()."""

    def __init__(self, body: Iterable[bytes], scope: Scope) -> None:
        self._body = body
        self._scope = scope
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException as exc:
            self._error = exc
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._scope.finish(self._error)


class GuardWSGIMiddleware:
    """Wrap a WSGI app so that database-bound requests pass a `Guard` first."""

    def __init__(
        self,
        app: WSGIApp,
        guard: Guard,
        *,
        exempt_paths: Iterable[str] = (),
        exempt: Callable[[Environ], bool] | None = None,
    ) -> None:
        self.app = app
        self.guard = guard
        self.exempt_paths = tuple(exempt_paths)
        self.exempt = exempt

    def _is_exempt(self, environ: Environ) -> bool:
        path = str(environ.get("PATH_INFO", ""))
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exempt_paths):
            return True
        return self.exempt is not None and self.exempt(environ)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._is_exempt(environ):
            return self.app(environ, start_response)
        try:
            scope = self.guard.enter()
        except Shed as exc:
            return _respond_503(start_response, exc)
        started = False

        def tracked_start(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal started
            started = True
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        try:
            body = self.app(environ, tracked_start)
        except Exception as exc:
            outcome = scope.finish(exc)
            if not started and (outcome is Outcome.FAILURE or isinstance(exc, Shed)):
                return _respond_503(start_response, exc)
            raise
        except BaseException as exc:
            scope.finish(exc)
            raise
        return _ScopedBody(body, scope)
