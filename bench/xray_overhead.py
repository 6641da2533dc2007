"""What rhythm-xray costs: throughput with the xray provider sending segments to a UDP daemon
stand-in and EMF documents to a TCP listener (``bench.sinks``: in a process of their own,
counting what arrives), against observability off, alternating runs in one process, on no-op
and on 1 ms tasks; and what importing aws-xray-sdk costs a worker at start.

    python -m bench.xray_overhead [--tasks 10000] [--rounds 5]

Needs ``pip install -e plugins/rhythm-xray``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import OFF, compare_provider, dropped, machine, print_comparison
from .datadog_overhead import import_seconds
from .sinks import Sink

IMPORTS = ("import aws_xray_sdk.core, aws_xray_sdk.core.models.segment, "
           "aws_xray_sdk.core.models.subsegment, aws_embedded_metrics.logger.metrics_context, "
           "aws_embedded_metrics.serializers.log_serializer")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    # the daemon and the CloudWatch agent, reduced to ports that read everything sent
    sink = Sink()
    daemon_port, emf_port = sink.udp_port, sink.tcp_port

    def xray(rate: float) -> dict[str, Any]:
        return {"provider": "xray",
                "traces": {"enabled": True, "sample_rate": rate,
                           "endpoint": f"127.0.0.1:{daemon_port}"},
                "metrics": {"enabled": True, "endpoint": f"tcp://127.0.0.1:{emf_port}"}}

    backends: dict[int, tuple[float, Any]] = {}  # each run's queue, for what it dropped

    def flushed() -> bool:  # the timed window includes building and sending every document
        import rhythm_xray

        backend = rhythm_xray.plugin.backend
        if backend is not None:
            backends[id(backend)] = (backend.sample_rate, backend.queue)
        return rhythm_xray.plugin.flush(60)

    blocks = {"off": OFF, "xray-default": xray(0.1), "xray-100": xray(1.0)}
    print(f"machine: {machine()}; daemon stand-in on UDP 127.0.0.1:{daemon_port}, EMF "
          f"listener on TCP 127.0.0.1:{emf_port}")
    try:
        results = compare_provider(blocks, flushed, args.tasks, args.rounds)
    finally:
        arrived = sink.stop()
    print_comparison(results, "xray", args.tasks, args.rounds,
                     f"each timed from the first claim until the plugin's queue was empty and "
                     f"its metrics sent; datagrams received: {arrived['datagrams']:,}, EMF bytes: "
                     f"{arrived['tcp_bytes']:,}; spans and points dropped because the plugin's "
                     f"queue was full: {dropped(backends.values(), 0.1):,} at the default rate, "
                     f"{dropped(backends.values(), 1.0):,} at 100%")
    imported, bare = import_seconds(IMPORTS)
    print(f"\nImporting aws-xray-sdk (its core, segments and subsegments) and aws-embedded-"
          f"metrics in a fresh interpreter: {imported * 1000:.0f} ms (median of 7; `pass` "
          f"alone: {bare * 1000:.2f} ms). A worker pays it once, at start, only with the xray "
          f"provider selected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
