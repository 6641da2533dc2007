"""Tracer and meter providers with their OTLP exporters, built from the settings."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from rhythm_core import ObservabilityConfig
from rhythm_core.catalogue import DURATION_BUCKETS

from .ids import CoreIds
from .settings import OtelSettings

log = logging.getLogger("rhythm_otel")
SCOPE = "rhythm-core"


class CountedExporter(SpanExporter):
    """Counts the spans an export failed to deliver, and says so in the log once."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self.inner, self.endpoint = inner, endpoint
        self.dropped = 0
        self._warned = False
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # an exporter that raises loses its batch like one that fails
            log.debug("rhythm-otel: export raised: %s", exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            with self._lock:
                self.dropped += len(spans)
                warn, self._warned = not self._warned, True
            if warn:
                log.warning(
                    "rhythm-otel: spans could not be sent to %s and are dropped (counted in "
                    "rhythm.observability.spans.dropped; this is logged once)",
                    self.endpoint,
                )
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def resource(config: ObservabilityConfig) -> Resource:
    """Service name and tags; ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES`` fill gaps."""
    attributes: dict[str, Any] = dict(config.tags)
    if config.service_name:
        attributes["service.name"] = config.service_name
    elif not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes["service.name"] = "rhythm"
    return Resource.create(attributes)


def _http_path(endpoint: str | None, path: str) -> str | None:
    """OTLP/HTTP wants the signal's path on an endpoint given as a base (``host:4318``)."""
    if endpoint and not endpoint.rstrip("/").endswith(path):
        return endpoint.rstrip("/") + path
    return endpoint


def span_exporter(settings: OtelSettings) -> SpanExporter:
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.traces_endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter(endpoint=_http_path(settings.traces_endpoint, "/v1/traces"))


def metric_reader(settings: OtelSettings, interval: float) -> MetricReader:
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter: Any = OTLPMetricExporter(endpoint=settings.metrics_endpoint)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        exporter = HttpMetricExporter(endpoint=_http_path(settings.metrics_endpoint, "/v1/metrics"))
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000)


class Pipeline:
    """What one process exports through: a tracer (ours, or from the application's SDK
    provider) and a meter provider. Built again in a forked child."""

    def __init__(self, config: ObservabilityConfig, settings: OtelSettings) -> None:
        self.settings = settings
        self.exporter: CountedExporter | None = None
        self.tracer_provider: TracerProvider | None = None  # ours, to shut down
        self.shared_provider: TracerProvider | None = None  # the application's, flush only
        self.tracer: Tracer | None = None
        self.meter_provider: MeterProvider | None = None
        self.prometheus: Any = None
        if config.traces.enabled:
            self._tracing(config)
        if config.metrics.enabled:
            self._metering(config)

    def _tracing(self, config: ObservabilityConfig) -> None:
        settings = self.settings
        existing = trace_api.get_tracer_provider()
        if isinstance(existing, TracerProvider):
            # one pipeline: the application's provider, its processors and exporters
            self.shared_provider = existing
            tracer = existing.get_tracer(SCOPE)
            assert isinstance(tracer, Tracer)
            tracer.id_generator = CoreIds(tracer.id_generator)
            self.tracer = tracer
            return
        endpoint = settings.traces_endpoint or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        )
        self.exporter = CountedExporter(span_exporter(settings), endpoint or "the default OTLP")
        provider = TracerProvider(
            resource=resource(config), id_generator=CoreIds(), sampler=ALWAYS_ON
        )  # the core has decided what is kept
        provider.add_span_processor(
            BatchSpanProcessor(
                self.exporter,
                max_queue_size=settings.max_queue_size,
                schedule_delay_millis=settings.schedule_delay_ms,
                max_export_batch_size=min(512, settings.max_queue_size),
            )
        )
        self.tracer_provider = provider
        tracer = provider.get_tracer(SCOPE)
        assert isinstance(tracer, Tracer)
        self.tracer = tracer

    def _metering(self, config: ObservabilityConfig) -> None:
        settings = self.settings
        readers: list[MetricReader] = []
        if settings.metrics_endpoint is not None or settings.prometheus_port is None:
            readers.append(metric_reader(settings, config.metrics.interval))
        if settings.prometheus_port is not None:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import start_http_server

            readers.append(PrometheusMetricReader())
            self.prometheus = start_http_server(
                settings.prometheus_port, addr=settings.prometheus_host
            )
        views = [
            View(
                instrument_name="rhythm.*",
                instrument_type=Histogram,
                aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS),
            )
        ]
        self.meter_provider = MeterProvider(
            resource=resource(config), metric_readers=readers, views=views
        )

    def meter(self) -> metrics_api.Meter | None:
        return self.meter_provider.get_meter(SCOPE) if self.meter_provider else None

    def shutdown(self, timeout: float) -> None:
        """Send what is queued, within ``timeout`` seconds, then stop the exporters."""
        millis = int(timeout * 1000)
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(millis)
            self.tracer_provider.shutdown()
        elif self.shared_provider is not None:
            self.shared_provider.force_flush(millis)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(millis)
            self.meter_provider.shutdown(millis)
        if self.prometheus is not None:
            server, thread = self.prometheus
            server.shutdown()
            thread.join(timeout)
