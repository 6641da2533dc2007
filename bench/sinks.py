"""Loopback ports that read and count everything sent to them, in a process of their own so
that reading costs the benchmark nothing (a listener thread in the measured process would
take the GIL from the worker it measures)."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_SINK = r"""
import signal, socket, sys, threading
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # for sigwait below
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
udp.bind(("127.0.0.1", 0))
tcp = socket.create_server(("127.0.0.1", 0))
counts = {"datagrams": 0, "lines": 0, "tcp_bytes": 0}
def read_udp():
    while True:
        data = udp.recv(65535)
        counts["datagrams"] += 1
        counts["lines"] += data.count(b"\n") + (not data.endswith(b"\n"))
def read_tcp():
    while True:
        connection, _ = tcp.accept()
        threading.Thread(target=drain, args=(connection,), daemon=True).start()
def drain(connection):
    while data := connection.recv(1 << 16):
        counts["tcp_bytes"] += len(data)
for target in (read_udp, read_tcp):
    threading.Thread(target=target, daemon=True).start()
print(udp.getsockname()[1], tcp.getsockname()[1], flush=True)
signal.sigwait({signal.SIGTERM})
print(counts["datagrams"], counts["lines"], counts["tcp_bytes"], flush=True)
"""


class Sink:
    """A UDP port and a TCP port on 127.0.0.1, read by another process until :meth:`stop`."""

    def __init__(self) -> None:
        self._process = subprocess.Popen([sys.executable, "-c", _SINK],
                                         stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        udp, tcp = self._process.stdout.readline().split()
        self.udp_port, self.tcp_port = int(udp), int(tcp)

    def stop(self) -> dict[str, int]:
        """Stop reading; what arrived: ``datagrams``, ``lines`` (in the datagrams) and
        ``tcp_bytes``."""
        self._process.send_signal(signal.SIGTERM)
        datagrams, lines, tcp_bytes = self._process.communicate(timeout=30)[0].split()
        return {"datagrams": int(datagrams), "lines": int(lines), "tcp_bytes": int(tcp_bytes)}


PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


class OtlpReceiver:
    """The otel plugin's tests' OTLP/gRPC receiver, in a process of its own: it answers as a
    collector does, so the exporter neither waits nor retries. Needs ``rhythm-otel[test]``."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(PLUGINS / "rhythm-otel/tests/otlp_sink.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.endpoint = f"http://127.0.0.1:{self._process.stdout.readline().strip()}"

    def stop(self) -> str:
        """Stop receiving; what it received, as the receiver reports it."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        received = self._process.stdout.readline().strip()
        self._process.wait(30)
        return received


def datadog_agent() -> Any:
    """Datadog's test agent as the datadog plugin's tests start it (``TestAgent``: ``.url``,
    ``.stop()``), answering as the agent does. Needs ``rhythm-datadog[test]``."""
    sys.path.insert(0, str(PLUGINS / "rhythm-datadog"))
    from tests.agent import TestAgent

    return TestAgent(Path(tempfile.mkdtemp(prefix="rhythm-bench-agent-")))
