"""What rhythm-xray costs: throughput with the xray provider sending segments to a UDP daemon
stand-in and EMF documents to a TCP listener (both in a process of their own, counting what
arrives), against observability off, alternating runs in one process, on no-op and on 1 ms
tasks; and what importing aws-xray-sdk costs a worker at start.

    python -m bench.xray_overhead [--tasks 10000] [--rounds 5]

Needs ``pip install -e plugins/rhythm-xray``.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from typing import Any

from .common import OFF, compare_provider, machine, print_comparison
from .datadog_overhead import import_seconds

IMPORTS = ("import aws_xray_sdk.core, aws_xray_sdk.core.models.segment, "
           "aws_xray_sdk.core.models.subsegment, aws_embedded_metrics.logger.metrics_context, "
           "aws_embedded_metrics.serializers.log_serializer")
# The daemon and the CloudWatch agent, reduced to what the plugin needs of them: ports that
# read everything sent, in another process so that reading costs the benchmark nothing.
SINK = r"""
import signal, socket, sys, threading
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # for sigwait below
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
udp.bind(("127.0.0.1", 0))
tcp = socket.create_server(("127.0.0.1", 0))
counts = {"datagrams": 0, "emf_bytes": 0}
def read_udp():
    while True:
        udp.recv(65535)
        counts["datagrams"] += 1
def read_tcp():
    while True:
        connection, _ = tcp.accept()
        threading.Thread(target=drain, args=(connection,), daemon=True).start()
def drain(connection):
    while data := connection.recv(1 << 16):
        counts["emf_bytes"] += len(data)
for target in (read_udp, read_tcp):
    threading.Thread(target=target, daemon=True).start()
print(udp.getsockname()[1], tcp.getsockname()[1], flush=True)
signal.sigwait({signal.SIGTERM})
print(counts["datagrams"], counts["emf_bytes"], flush=True)
"""


def dropped(backends: Any, rate: float) -> int:
    return sum(b.queue.dropped for b in backends if b.sample_rate == rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    daemon_port, emf_port = sink.stdout.readline().split()

    def xray(rate: float) -> dict[str, Any]:
        return {"provider": "xray",
                "traces": {"enabled": True, "sample_rate": rate,
                           "endpoint": f"127.0.0.1:{daemon_port}"},
                "metrics": {"enabled": True, "endpoint": f"tcp://127.0.0.1:{emf_port}"}}

    backends: dict[int, Any] = {}  # each run's, for what its queue dropped

    def flushed() -> bool:  # the timed window includes building and sending every document
        import rhythm_xray

        backend = rhythm_xray.plugin.backend
        if backend is not None:
            backends[id(backend)] = backend
        return rhythm_xray.plugin.flush(60)

    blocks = {"off": OFF, "xray-default": xray(0.1), "xray-100": xray(1.0)}
    print(f"machine: {machine()}; daemon stand-in on UDP 127.0.0.1:{daemon_port}, EMF "
          f"listener on TCP 127.0.0.1:{emf_port}")
    try:
        results = compare_provider(blocks, flushed, args.tasks, args.rounds)
    finally:
        sink.send_signal(signal.SIGTERM)
        datagrams, emf_bytes = sink.communicate(timeout=30)[0].split()
    print_comparison(results, "xray", args.tasks, args.rounds,
                     f"each timed from the first claim until the plugin's queue was empty and "
                     f"its metrics sent; datagrams received: {int(datagrams):,}, EMF bytes: "
                     f"{int(emf_bytes):,}; spans and points dropped because the plugin's queue "
                     f"was full: {dropped(backends.values(), 0.1):,} at the default rate, "
                     f"{dropped(backends.values(), 1.0):,} at 100%")
    imported, bare = import_seconds(IMPORTS)
    print(f"\nImporting aws-xray-sdk (its core, segments and subsegments) and aws-embedded-"
          f"metrics in a fresh interpreter: {imported * 1000:.0f} ms (median of 7; `pass` "
          f"alone: {bare * 1000:.2f} ms). A worker pays it once, at start, only with the xray "
          f"provider selected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
