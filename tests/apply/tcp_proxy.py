"""A TCP proxy on loopback that can black-hole its connections, like a dead network path.

`blackhole()` keeps every socket open and drops every byte in both directions:
neither side sees an error or a close, exactly like a peer behind a dead link
(the client waits for a reply for ever unless its TCP keepalives give up).
With `new_connections=False` only the connections open now are cut off, and
new ones are forwarded (a NAT that lost its state for existing flows).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

__all__ = ["TcpProxy"]


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket, dropped: bool) -> None:
        self.client = client
        self.upstream = upstream
        self.dropped = dropped

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.dropped:
                    dst.sendall(data)
        except OSError:
            pass
        if not self.dropped:  # a black-holed peer never learns the other side closed
            self.close()

    def close(self) -> None:
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.close()


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until told to black-hole."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._drop_new = False
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def dsn(self, dbname: str, user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def blackhole(self, *, new_connections: bool = True) -> None:
        """Drop every byte of the open connections (and of new ones, unless told not to)."""
        with self._lock:
            for pair in self._pairs:
                pair.dropped = True
            self._drop_new = new_connections

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                dropped = self._drop_new
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, upstream, dropped)
            with self._lock:
                self._pairs.append(pair)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pair.pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            for pair in self._pairs:
                pair.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
