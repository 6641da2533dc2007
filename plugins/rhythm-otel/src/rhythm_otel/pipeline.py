"""Tracer and meter providers with their OTLP exporters, built from the settings."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from rhythm_core.observability import DURATION_BUCKETS, ObservabilityConfig

from .aggregation import Aggregates, MergingExporter
from .encoding import resource_message, scope_message
from .ids import CoreIds
from .quiet import OncePerKind
from .sdk import merging_prometheus_reader
from .settings import OtelSettings
from .shipping import SpanShipper, grpc_sender, http_sender

log = logging.getLogger("rhythm_otel")
SCOPE = "rhythm-core"
DROPPED = "rhythm.otel.spans.dropped"


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


def span_shipper(config: ObservabilityConfig, settings: OtelSettings) -> SpanShipper:
    """Our own span export; the endpoint as the SDK's exporters would pick it."""
    env = os.environ
    endpoint: str
    if settings.protocol == "grpc":
        send, close = grpc_sender(settings.traces_endpoint)
        endpoint = (
            settings.traces_endpoint
            or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or "localhost:4317"
        )
    else:
        endpoint = (
            _http_path(settings.traces_endpoint, "/v1/traces")
            or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or _http_path(
                env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318", "/v1/traces"
            )
            or ""
        )
        send, close = http_sender(endpoint)
    return SpanShipper(
        send,
        close,
        resource_message(resource(config).attributes),
        scope_message(SCOPE, ""),
        endpoint=endpoint,
        max_queue_size=settings.max_queue_size,
        schedule_delay_ms=settings.schedule_delay_ms,
    )


def metric_exporter(
    settings: OtelSettings, aggregates: Aggregates, resource: Resource
) -> MergingExporter:
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter: Any = OTLPMetricExporter(endpoint=settings.metrics_endpoint)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        exporter = HttpMetricExporter(endpoint=_http_path(settings.metrics_endpoint, "/v1/metrics"))
    return MergingExporter(exporter, aggregates, resource)


class Pipeline:
    """What one process exports through: a tracer (ours, or from the application's SDK
    provider) and a meter provider. Built again in a forked child."""

    def __init__(self, config: ObservabilityConfig, settings: OtelSettings) -> None:
        self.settings = settings
        self.shipper: SpanShipper | None = None  # ours: core spans encoded and sent directly
        self.shared_provider: TracerProvider | None = None  # the application's, flush only
        self.tracer: Tracer | None = None
        self.meter_provider: MeterProvider | None = None
        self.aggregates: Aggregates | None = None
        self.exporter: MergingExporter | None = None  # OTLP metrics, when they are pushed
        self.prometheus: Any = None
        if config.traces.enabled:
            self._tracing(config)
        if config.metrics.enabled:
            self._metering(config)
        endpoints = [self.shipper.endpoint if self.shipper else "", settings.metrics_endpoint or ""]
        self.quiet = OncePerKind(endpoints).install()

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
        self.shipper = span_shipper(config, settings)

    def _metering(self, config: ObservabilityConfig) -> None:
        settings = self.settings
        where = resource(config)
        aggregates = Aggregates(InstrumentationScope(SCOPE), DURATION_BUCKETS)
        readers: list[MetricReader] = []
        if settings.metrics_endpoint is not None or settings.prometheus_port is None:
            self.exporter = metric_exporter(settings, aggregates, where)
            readers.append(
                PeriodicExportingMetricReader(
                    self.exporter, export_interval_millis=config.metrics.interval * 1000
                )
            )
        if settings.prometheus_port is not None:
            from .prometheus import serve

            readers.append(merging_prometheus_reader(aggregates.merge, where))
            self.prometheus = serve(settings.prometheus_port, settings.prometheus_host)
        # shut down by this plugin within the worker's budget, not by the SDK's own exit hook,
        # which would wait out the exporter's timeout when the backend is down
        self.meter_provider = MeterProvider(
            resource=where, metric_readers=readers, shutdown_on_exit=False
        )
        self.aggregates = aggregates
        # the SDK's readers export only when the SDK itself collected something: this one
        # instrument (always there, 0 with tracing off) carries the plugin's sums along
        shipper = self.shipper
        self.meter_provider.get_meter(SCOPE).create_observable_counter(
            DROPPED,
            [lambda _options: [Observation(shipper.dropped if shipper else 0)]],
            "{span}",
            "Spans rhythm-otel could not deliver: queue full, export failed, or still "
            "queued at shutdown",
        )

    def shutdown(self, timeout: float) -> None:
        """Send what is queued and the last metrics, within ``timeout`` seconds in all, then
        stop the exporters; say once what could not be delivered. Spans and metrics are sent
        side by side, so that an endpoint that hangs one does not starve the other."""
        deadline = time.monotonic() + timeout
        metrics = None
        if self.meter_provider is not None:
            metrics = threading.Thread(
                target=self._stop_metrics, args=(timeout,), name="rhythm-otel-stop", daemon=True
            )
            metrics.start()
        if self.shipper is not None:
            self.shipper.shutdown(timeout)
        elif self.shared_provider is not None:
            self.shared_provider.force_flush(int(timeout * 1000))
        if metrics is not None:
            metrics.join(max(deadline - time.monotonic(), 0.0))
        if self.prometheus is not None:
            server, thread = self.prometheus
            server.shutdown()
            thread.join(max(deadline - time.monotonic(), 0.1))
        self.quiet.remove()
        lost_spans = self.shipper.dropped if self.shipper is not None else 0
        failed_exports = self.exporter.failed if self.exporter is not None else 0
        if lost_spans or failed_exports:
            log.warning(
                "rhythm-otel: %d span(s) and %d metrics export(s) could not be delivered "
                "while this process ran",
                lost_spans,
                failed_exports,
            )

    def _stop_metrics(self, timeout: float) -> None:
        """The reader's last export, then the exporter's stop; an export that did not get to
        run before the deadline counts as failed."""
        assert self.meter_provider is not None
        try:
            self.meter_provider.shutdown(int(timeout * 1000))
        except Exception as exc:
            log.debug("rhythm-otel: stopping the metrics export: %s", exc)
            if self.exporter is not None:
                self.exporter.failed += 1
