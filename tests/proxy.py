"""A TCP proxy in front of PostgreSQL that a test can cut (dropping every connection and
refusing new ones), stall (holding every connection open, old and new, while forwarding
nothing: a half-open network or a hung server) and restore: faults without touching the
server."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class DatabaseProxy:
    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        host, port = str(params.get("host") or "localhost"), int(params.get("port") or 5432)
        if host.startswith("/"):
            self._target: Any = f"{host}/.s.PGSQL.{port}"
            self._family = socket.AF_UNIX
        else:
            self._target, self._family = (host, port), socket.AF_INET
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = make_conninfo(url, host="127.0.0.1", port=self._listener.getsockname()[1])
        self._cut = threading.Event()
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def stall(self) -> None:
        self._stalled.set()

    def restore(self) -> None:
        """End a cut, or a stall: the stalled connections are dropped (their peers have long
        given up on them), new ones are forwarded again."""
        if self._stalled.is_set():
            self.cut()
            self._stalled.clear()
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            if self._stalled.is_set():  # accepted, and never answered
                with self._lock:
                    self._sockets.add(client)
                continue
            upstream = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                upstream.connect(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                if self._stalled.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                for sock in (a, b):
                    self._sockets.discard(sock)
                    sock.close()
