"""The Prometheus pull endpoint: the SDK's Prometheus reader, with the plugin's histograms.

Imported only when a Prometheus port is configured (``opentelemetry-exporter-prometheus`` is
the ``prometheus`` extra).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

from .aggregation import Aggregates


class MergingPrometheusReader(PrometheusMetricReader):
    """Each scrape's collection, plus the histograms kept by :class:`Aggregates`."""

    def __init__(self, aggregates: Aggregates, resource: Resource) -> None:
        super().__init__()
        self.aggregates, self.resource = aggregates, resource

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        merged = self.aggregates.merge(metrics_data, self.resource)
        super()._receive_metrics(merged, timeout_millis, **kwargs)  # type: ignore[arg-type]


def serve(port: int, host: str) -> tuple[Any, Any]:
    """Start ``/metrics`` on ``host:port``; returns (server, thread) to stop it with."""
    return start_http_server(port, addr=host)
