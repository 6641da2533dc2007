"""Every use the plugin makes of the OpenTelemetry SDK's private code, in one place.

The plugin sends spans it encoded itself through the SDK's OTLP/gRPC exporter (so that the
SDK's channel, TLS, headers, compression and retries apply), and adds its own histograms to
what the SDK's metric readers export. Both need the SDK's internals, which may change in any
minor release: :data:`SUPPORTED` is the range the plugin is tested with (its dependencies
pin it), and :func:`problems` says what an installed SDK lacks. The plugin checks it when it
is configured, so a worker with an SDK that changed fails at start naming what is missing,
rather than exporting nothing.
"""

from __future__ import annotations

import inspect
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, MetricsData
from opentelemetry.sdk.resources import Resource

from rhythm_core.observability import ConfigError

SUPPORTED = ">=1.30,<1.46"  # opentelemetry-sdk and the OTLP exporters

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _BytesTraceStub:
    """The trace service's stub with no request serializer: gRPC sends the bytes given."""

    def __init__(self, channel: Any) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
            _registered_method=True,
        )


class GrpcPayloadExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter fed with requests already encoded (objects with a
    ``payload`` of bytes and a length). The request goes out as the bytes the encoder wrote,
    not parsed into the SDK's protobuf object for its stub to serialize again."""

    def _initialize_channel_and_stub(self) -> None:
        self._stub = _BytesTraceStub  # also when the SDK reconnects after UNAVAILABLE
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]

    def _translate_data(self, data: Any) -> bytes:  # type: ignore[override]
        payload: bytes = data.payload
        return payload

    def _count_data(self, data: Any) -> int:
        return len(data)


def preferences(exporter: MetricExporter) -> tuple[Any, Any]:
    """The temporality and aggregation an exporter asked its reader for, to pass on to a
    wrapper of it."""
    return exporter._preferred_temporality, exporter._preferred_aggregation


def merging_prometheus_reader(merge: Any, resource: Resource) -> MetricReader:
    """The SDK's Prometheus reader whose every collection is first passed through
    ``merge(metrics_data, resource)`` (the plugin's histograms added). Imports the
    Prometheus exporter, which only the ``prometheus`` extra installs."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    class MergingPrometheusReader(PrometheusMetricReader):
        def _receive_metrics(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
        ) -> None:
            merged = merge(metrics_data, resource)
            super()._receive_metrics(merged, timeout_millis, **kwargs)

    return MergingPrometheusReader()


def problems() -> list[str]:
    """What the installed SDK lacks of the internals used above (empty when all is there)."""
    found: list[str] = []
    for name in ("_initialize_channel_and_stub", "_translate_data", "_count_data"):
        if not callable(getattr(OTLPSpanExporter, name, None)):
            found.append(f"OTLPSpanExporter.{name}")
    if "self._stub(" not in _source(OTLPSpanExporter, "_initialize_channel_and_stub"):
        found.append("OTLPSpanExporter._initialize_channel_and_stub building self._stub")
    init = _source(MetricExporter, "__init__")
    for name in ("_preferred_temporality", "_preferred_aggregation"):
        if f"self.{name}" not in init:
            found.append(f"MetricExporter.{name}")
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError:  # the prometheus extra is not installed: nothing of it is used
        pass
    else:
        if not callable(getattr(PrometheusMetricReader, "_receive_metrics", None)):
            found.append("PrometheusMetricReader._receive_metrics")
    return found


def check() -> None:
    """Raise :class:`ConfigError` naming what the installed SDK lacks, and the range the
    plugin supports."""
    missing = problems()
    if missing:
        raise ConfigError(
            f"rhythm-otel uses internals of opentelemetry-sdk that version {_version()} does "
            f"not have: {', '.join(missing)}; install a supported version: pip install "
            f"'opentelemetry-sdk{SUPPORTED}' 'opentelemetry-exporter-otlp-proto-grpc{SUPPORTED}'"
        )


def _source(owner: type, name: str) -> str:
    try:
        return inspect.getsource(getattr(owner, name))
    except (AttributeError, OSError, TypeError):
        return ""


def _version() -> str:
    try:
        return version("opentelemetry-sdk")
    except PackageNotFoundError:
        return "(unknown)"
