"""The ``otel`` provider's hook implementations."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import propagate
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import Tracer
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace import SpanContext as OtelContext
from opentelemetry.trace.span import TraceState

from rhythm_core.observability import (
    ERROR,
    BackendPlugin,
    MetricPoint,
    ObservabilityConfig,
    Span,
    SpanContext,
    hookimpl,
)

from . import ids, sdk
from .pipeline import Pipeline
from .settings import resolve

NAME = "otel"
KINDS = {
    "internal": SpanKind.INTERNAL,
    "client": SpanKind.CLIENT,
    "server": SpanKind.SERVER,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)


def _otel_context(
    trace_id: str,
    span_id: str,
    sampled: bool = True,
    *,
    remote: bool = True,
    state: TraceState | None = None,
) -> OtelContext:
    """The core's ids as an OpenTelemetry span context: remote for a parent or link from
    elsewhere, local for the attempt's span made current in this process."""
    flags = SAMPLED if sampled else UNSAMPLED
    return OtelContext(int(trace_id, 16), int(span_id, 16), remote, flags, state)


class OtelPlugin(BackendPlugin[Pipeline]):
    """Spans and metrics of rhythm-core through the OpenTelemetry SDK."""

    name = NAME

    def build(self, config: ObservabilityConfig) -> Pipeline:
        sdk.check()  # an SDK whose internals changed fails at start, naming what is missing
        return Pipeline(config, resolve(config))

    @property
    def pipeline(self) -> Pipeline | None:
        """This process's pipeline (exporters and readers), None when not configured."""
        return self.backend

    @property
    def dropped_spans(self) -> int:
        """Spans lost since the pipeline was built: queue full, export failed, or still queued
        at shutdown."""
        pipeline = self.pipeline
        return pipeline.shipper.dropped if pipeline and pipeline.shipper else 0

    # -- spans -----------------------------------------------------------------------------

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        """The span is exported once it is final: parents are named by id, so nothing needs
        a native span earlier. With our own pipeline the core's span goes to the export queue
        as it is; through an application's SDK provider it is built as an SDK span."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        if pipeline.shipper is not None:
            pipeline.shipper.add(span)
            return
        if pipeline.tracer is not None:
            self._sdk_span(pipeline.tracer, span)

    def _sdk_span(self, tracer: Tracer, span: Span) -> None:
        if span.parent_span_id:
            parent = trace_api.set_span_in_context(
                NonRecordingSpan(_otel_context(span.trace_id, span.parent_span_id)),
                context_api.Context(),
            )
        else:
            parent = context_api.Context()  # else the current span would become the parent
        attributes = span.attributes
        if span.kept_for_error:
            attributes = {**attributes, "rhythm.sampling.kept_for_error": True}
        links = [Link(_otel_context(x.trace_id, x.span_id, x.sampled)) for x in span.links]
        token = ids.use(int(span.trace_id, 16), int(span.span_id, 16))
        try:
            native = tracer.start_span(
                span.name,
                context=parent,
                kind=KINDS.get(span.kind, SpanKind.INTERNAL),
                attributes=attributes,
                links=links,
                start_time=span.start_ns,
            )
        finally:
            ids.done(token)
        if span.status == ERROR:
            native.set_status(Status(StatusCode.ERROR, span.error_message or span.error_type))
            event: dict[str, Any] = {"exception.type": span.error_type or "Exception"}
            if span.error_message:
                event["exception.message"] = span.error_message
            if span.error_stack:
                event["exception.stacktrace"] = span.error_stack
            native.add_event("exception", event, timestamp=span.end_ns)
        else:
            native.set_status(Status(StatusCode.OK))
        native.end(end_time=span.end_ns)

    # -- the application's own instrumentation --------------------------------------------

    @hookimpl
    def rhythm_span_activate(self, context: SpanContext) -> AbstractContextManager[object] | None:
        """The core span becomes OpenTelemetry's current span: spans of the application's SDK
        provider (its instrumentations) become its children, and with no SDK provider its
        propagators still send its trace id and sampled flag downstream."""
        if self.pipeline is None:
            return None
        return _Current(context)

    # -- propagation -----------------------------------------------------------------------

    @hookimpl
    def rhythm_context_inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        """Through the global propagator (``OTEL_PROPAGATORS``: W3C, b3, xray...). With no
        core span, the application's current span goes in: it parents the execution."""
        if span is None:
            propagate.inject(carrier)
            return
        native = NonRecordingSpan(_otel_context(span.trace_id, span.span_id, span.sampled))
        propagate.inject(carrier, context=trace_api.set_span_in_context(native))

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        found = trace_api.get_current_span(propagate.extract(carrier)).get_span_context()
        if not found.is_valid:
            return None
        state: TraceState = found.trace_state
        return SpanContext(
            f"{found.trace_id:032x}",
            f"{found.span_id:016x}",
            found.trace_flags.sampled,
            state.to_header() if state else "",
        )

    # -- metrics ---------------------------------------------------------------------------

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        pipeline = self.pipeline
        if pipeline is not None and pipeline.aggregates is not None:
            pipeline.aggregates.add(point)


class _Current:
    """Attaches a non-recording span with the core's ids to the OpenTelemetry context (local,
    not remote: it is this process's span), and detaches it."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: SpanContext) -> None:
        self._context = context

    def __enter__(self) -> None:
        core = self._context
        state = TraceState.from_header([core.tracestate]) if core.tracestate else None
        native = NonRecordingSpan(
            _otel_context(core.trace_id, core.span_id, core.sampled, remote=False, state=state)
        )
        self._token = context_api.attach(trace_api.set_span_in_context(native))

    def __exit__(self, *exc_info: object) -> None:
        context_api.detach(self._token)
