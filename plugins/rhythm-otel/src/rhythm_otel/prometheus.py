"""The Prometheus pull endpoint (``/metrics``), served by ``prometheus_client``.

Imported only when a Prometheus port is configured (``opentelemetry-exporter-prometheus`` is
the ``prometheus`` extra); the reader itself is :func:`.sdk.merging_prometheus_reader`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import start_http_server


def serve(port: int, host: str) -> tuple[Any, Any]:
    """Start ``/metrics`` on ``host:port``; returns (server, thread) to stop it with."""
    return start_http_server(port, addr=host)
