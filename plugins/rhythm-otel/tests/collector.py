"""The ``rotel`` OpenTelemetry collector (from PyPI) in front of the OTLP sink.

Spans and metrics go plugin -> rotel (OTLP gRPC or HTTP, on loopback) -> sink (OTLP gRPC),
so what the tests read has crossed a real collector, as it would on its way to a backend.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import rotel

from rhythm_core.testing.processes import free_port, stop_process


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Rotel:
    """One rotel agent on free loopback ports, exporting to ``upstream`` over OTLP/gRPC."""

    def __init__(self, upstream: str, workdir: Path) -> None:
        self.log = workdir / "rotel.log"
        # a port free when picked may be taken (as some connection's local port) before
        # rotel binds it: pick again then
        for attempt in range(1, 4):
            if self._start(upstream, workdir):
                return
            if "Address already in use" not in self.log.read_text() or attempt == 3:
                raise RuntimeError(f"rotel did not start: {self.log.read_text()[-2000:]}")

    def _start(self, upstream: str, workdir: Path) -> bool:
        self.grpc_port, self.http_port = free_port(), free_port()
        self.grpc_endpoint = f"http://127.0.0.1:{self.grpc_port}"
        self.http_endpoint = f"http://127.0.0.1:{self.http_port}"
        agent = Path(rotel.__file__).parent / "rotel-agent"
        self.process = subprocess.Popen(
            [
                str(agent), "start",
                "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
                "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
                "--exporter", "otlp",
                "--otlp-exporter-endpoint", upstream,
                "--otlp-exporter-protocol", "grpc",
                "--batch-timeout", "100ms",
                "--pid-file", str(workdir / "rotel.pid"),
                "--log-file", str(self.log),
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while not (_listening(self.grpc_port) and _listening(self.http_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        stop_process(self.process)
