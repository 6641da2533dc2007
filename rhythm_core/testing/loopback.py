"""Loopback servers for tests: an HTTP server that keeps the headers of every request (what a
downstream service sees of the trace an execution propagates), and a listener that accepts
and never answers (a backend that hangs)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .processes import free_port


class HeaderServer:
    """Answers every GET on 127.0.0.1 (a free port) with ``200 ok`` and keeps each request's
    headers, names in lower case, in ``received``."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                received.append({k.lower(): v for k, v in self.headers.items()})
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rhythm-header-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class BlackHole:
    """A TCP listener on 127.0.0.1 (a free port) that accepts every connection and never
    reads or answers: a backend that is up but hangs. ``address`` is ``host:port``,
    ``url`` the same as ``http://``."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="rhythm-black-hole", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.getsockname()[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        return len(self._held)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._held.append(connection)

    def stop(self) -> None:
        self._closed.set()
        self._server.close()
        for connection in self._held:
            connection.close()
        self._thread.join(5)


@contextlib.contextmanager
def backend_down(how: str) -> Iterator[str]:
    """The ``host:port`` of a backend that is down, for a ``with`` block: ``"closed"``
    (nothing listens there) or ``"black-holed"`` (a :class:`BlackHole`, stopped after)."""
    if how == "closed":
        yield f"127.0.0.1:{free_port()}"
        return
    hole = BlackHole()
    try:
        yield hole.address
    finally:
        hole.stop()
