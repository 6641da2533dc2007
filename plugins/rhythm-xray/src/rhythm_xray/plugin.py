"""The ``xray`` provider's hook implementations."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from rhythm_core.observability import (
    BackendPlugin,
    MetricPoint,
    ObservabilityConfig,
    Span,
    SpanContext,
    TelemetryQueue,
    hookimpl,
)

from .settings import XRaySettings, resolve

NAME = "xray"
log = logging.getLogger("rhythm_xray")


class _Backend:
    """What one process sends through: segment documents to the daemon over UDP, EMF
    documents to the CloudWatch agent, both from one queue's thread."""

    def __init__(self, config: ObservabilityConfig, settings: XRaySettings) -> None:
        self.sample_rate = config.traces.sample_rate
        self.tracing = config.traces.enabled
        # aws-xray-sdk and aws-embedded-metrics are imported here, each only when its half is
        # on: never at import time, and a metrics-only worker does not load the X-Ray SDK
        if self.tracing:
            from aws_xray_sdk.core import xray_recorder

            from .current import Current
            from .emitter import DaemonEmitter
            from .segments import Documents

            self.documents = Documents(settings.service, config.tags)
            self.emitter = DaemonEmitter(settings.daemon, self.documents)
            self.app_recorder: Any = xray_recorder  # the application's, read for propagation
            # what rhythm_span_activate returns, given the core's span
            self.current = functools.partial(Current, xray_recorder, settings.service)
        self.flusher: Any = None
        if config.metrics.enabled:
            from .emf import Flusher, Metrics, Sink

            self.flusher = Flusher(
                Metrics(settings, config.tags), Sink(settings), config.metrics.interval
            )
        self.queue = TelemetryQueue(
            "rhythm-xray",
            self.send_trace,
            self.add_point,
            after_batch=self.after_batch,
            # no pause after each trace: each release of the GIL costs this thread up to the
            # 5 ms switch interval to get it back from a busy event loop, and at 100%
            # sampling it fell behind (BENCHMARKS.md); the interpreter still makes it yield
            # to the loop every switch interval
            pause_between_traces=False,
        )

    def send_trace(self, trace_id: str, spans: list[Span]) -> None:
        for document in self.documents.documents(trace_id, spans):
            self.emitter.send_document(document)

    def add_point(self, point: MetricPoint) -> None:
        self.flusher.metrics.add(point)

    def after_batch(self) -> None:
        if self.flusher is not None and self.flusher.due():
            self.flusher.flush()

    def flush(self, timeout: float) -> bool:
        done = self.queue.flush(timeout)
        if self.flusher is not None:
            self.flusher.flush()
        return done

    def shutdown(self, timeout: float) -> None:
        self.queue.shutdown(timeout)
        if self.flusher is not None:
            self.flusher.flush()
            self.flusher.sink.close()
        if self.tracing:
            self.emitter.close()
        datagrams = self.emitter.failed if self.tracing else 0
        documents = self.flusher.sink.dropped if self.flusher is not None else 0
        if datagrams or documents or self.queue.dropped:
            log.warning(
                "rhythm-xray: %d segment datagram(s), %d EMF document(s) and %d queued span(s) "
                "or metric point(s) could not be delivered while this process ran",
                datagrams,
                documents,
                self.queue.dropped,
            )


class XRayPlugin(BackendPlugin[_Backend]):
    """Spans of rhythm-core as X-Ray segments, metrics as CloudWatch EMF documents."""

    name = NAME

    def build(self, config: ObservabilityConfig) -> _Backend:
        return _Backend(config, resolve(config))

    # -- spans and metrics -----------------------------------------------------------------

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        """Queued; the queue's thread builds the documents with the core's ids and times."""
        backend = self.backend
        if backend is not None and backend.tracing:
            backend.queue.put(span)

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        backend = self.backend
        if backend is not None and backend.flusher is not None:
            backend.queue.put(point)

    # -- the application's own instrumentation --------------------------------------------

    @hookimpl
    def rhythm_span_activate(self, context: SpanContext) -> AbstractContextManager[object] | None:
        """A segment standing for the core's span becomes the X-Ray recorder's current
        entity: the SDK's patches (requests, botocore, psycopg...) and the application's
        subsegments nest under it, and their ``X-Amzn-Trace-Id`` carries its trace."""
        backend = self.backend
        if backend is None or not backend.tracing:
            return None
        return backend.current(context)

    # -- propagation -----------------------------------------------------------------------

    @hookimpl
    def rhythm_context_inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        """``X-Amzn-Trace-Id`` for the core's span; with no core span, for the application's
        open segment or subsegment (a web request), which then parents the execution."""
        backend = self.backend
        if backend is None or not backend.tracing:
            return
        from .propagation import HEADER, current_entity, entity_header, header

        if span is not None:
            carrier.setdefault(HEADER, header(span.trace_id, span.span_id, span.sampled))
            return
        entity = current_entity(backend.app_recorder)
        value = entity_header(entity) if entity is not None else None
        if value:
            carrier.setdefault(HEADER, value)

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        backend = self.backend
        if backend is None or not backend.tracing:
            return None
        from .propagation import read

        return read(carrier, backend.sample_rate)

    def flush(self, timeout: float = 30.0) -> bool:
        """Send everything queued and every metric summed so far, now."""
        backend = self.backend
        return True if backend is None else backend.flush(timeout)
