"""A UDP listener on loopback that keeps every DogStatsD line it receives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Datagram:
    """One DogStatsD line: ``name:value[:value...]|type[|@rate][|#tag,tag]``."""

    name: str
    values: tuple[float, ...]
    type: str
    tags: tuple[str, ...]
    rate: float = 1.0  # the client's sample rate: the line stands for 1/rate values

    @classmethod
    def parse(cls, line: str) -> Datagram:
        head, *fields = line.split("|")
        name, _, values = head.partition(":")
        tags: tuple[str, ...] = ()
        rate = 1.0
        for part in fields[1:]:
            if part.startswith("#"):
                tags = tuple(part[1:].split(","))
            elif part.startswith("@"):
                rate = float(part[1:])
        return cls(name, tuple(float(v) for v in values.split(":")), fields[0], tags, rate)

    def tag(self, key: str) -> str | None:
        for tag in self.tags:
            name, _, value = tag.partition(":")
            if name == key:
                return value
        return None


class StatsdListener:
    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.lines: list[Datagram] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65535)
            except OSError:
                continue
            lines = [Datagram.parse(line) for line in data.decode().splitlines() if line]
            with self.lock:
                self.lines.extend(lines)

    def received(self) -> list[Datagram]:
        with self.lock:
            return list(self.lines)

    def wait_for(self, what: Callable[[list[Datagram]], Any], timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what(self.received())
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"not received; got {sorted({d.name for d in self.received()})}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.socket.close()
