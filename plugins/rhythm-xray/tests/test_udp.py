"""The GIL-keeping datagram send: what it sends arrives, and its errors are the socket
module's (a closed port surfaces as ConnectionRefusedError on a connected socket)."""

from __future__ import annotations

import socket
import time

import pytest
from rhythm_xray.udp import sender

from rhythm_core.testing.processes import free_port


def _connected(port: int) -> socket.socket:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    udp.connect(("127.0.0.1", port))
    return udp


def test_datagrams_arrive_whole() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        with _connected(receiver.getsockname()[1]) as udp:
            send = sender(udp)
            assert send is not udp.send  # libc's send, keeping the GIL, is available here
            for size in (1, 1_500, 60_000):
                send(b"x" * size)
                assert receiver.recv(65_535) == b"x" * size


def test_a_closed_port_is_reported_as_refused() -> None:
    with _connected(free_port()) as udp:
        send = sender(udp)
        send(b"first")  # the kernel answers with ICMP port unreachable
        deadline = time.monotonic() + 5
        with pytest.raises(ConnectionRefusedError):
            while time.monotonic() < deadline:
                send(b"again")
                time.sleep(0.01)
