"""A real webhook receiver for the tests: http.server in a thread, recording each POST.

Modes: `ok` answers 200; `fail:N:CODE` answers CODE to the first N requests, then 200;
`hang` reads the request and never answers (until the server stops).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Receiver:
    mode: str = "ok"
    port: int = 0
    token: str = "T0KEN-s3cret-path-4711"  # the secret part of the URL
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{self.token}"

    def kinds(self) -> list[str]:
        with self.cond:
            return [str(r.get("notification", r.get("text", ""))) for r in self.requests]

    def wait_for(self, kind: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The first body of notification `kind`; fails after `timeout_s` (a hang guard)."""
        with self.cond:
            ok = self.cond.wait_for(
                lambda: any(r.get("notification") == kind for r in self.requests), timeout_s
            )
            assert ok, f"no {kind} notification within {timeout_s} s; got {self.kinds()}"
            return next(r for r in self.requests if r.get("notification") == kind)


def _handler(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rx.cond:
                rx.requests.append(orjson.loads(body))
                rx.headers.append({"path": self.path, **dict(self.headers.items())})
                n = len(rx.requests)
                rx.cond.notify_all()
            if rx.mode == "hang":
                rx.release.wait(120)
                return
            code = 200
            if rx.mode.startswith("fail:"):
                _, count, status = rx.mode.split(":")
                code = int(status) if n <= int(count) else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    return Handler


@contextmanager
def receiver(mode: str = "ok") -> Iterator[Receiver]:
    rx = Receiver(mode=mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rx))
    server.daemon_threads = True
    rx.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rx
    finally:
        rx.release.set()
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
