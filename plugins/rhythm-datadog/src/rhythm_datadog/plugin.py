"""The ``datadog`` provider's hook implementations."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from rhythm_core.observability import (
    COUNTER,
    ERROR,
    GAUGE,
    HISTOGRAM,
    BackendPlugin,
    MetricPoint,
    ObservabilityConfig,
    Span,
    SpanContext,
    TelemetryQueue,
    hookimpl,
)

from .settings import DatadogSettings, resolve

log = logging.getLogger("rhythm_datadog")
NAME = "datadog"
AUTO_REJECT, AUTO_KEEP, USER_KEEP = 0, 1, 2  # ddtrace's sampling priorities
# Distribution lines per series and metric point, on average: a point holds up to a quarter
# second of observations, so at most about 128 lines a second per series reach the agent.
LINES_PER_POINT = 32


class _Backend:
    """What one process sends through: ddtrace's global tracer and a DogStatsD client."""

    def __init__(self, config: ObservabilityConfig, settings: DatadogSettings) -> None:
        self.settings = settings
        self.tags = {str(k): str(v) for k, v in config.tags.items()}
        # imported here, never at import time, and only for tracing: a metrics-only worker
        # does not load ddtrace (nor fix its agent address before tracing is configured)
        self.tracer: Any = None
        if config.traces.enabled:
            _point_ddtrace_at(settings.agent_url)
            from ddtrace.propagation.http import HTTPPropagator
            from ddtrace.trace import Context, tracer
            from ddtrace.trace import Span as NativeSpan

            self.tracer, self.context, self.propagator = tracer, Context, HTTPPropagator
            self.native_span = NativeSpan
        self.statsd: Any = None
        if config.metrics.enabled:
            from datadog.dogstatsd.base import DogStatsd

            self.statsd = DogStatsd(
                host=settings.statsd_host,
                port=settings.statsd_port,
                constant_tags=constant_tags(settings.service, self.tags),
                disable_buffering=False,  # one datagram for many lines
                disable_aggregation=False,  # counts and gauges summed between flushes
                # distributions are not held in the client's reservoir, whose upkeep per
                # value is the larger cost (bench.datadog_overhead): each value goes to the
                # buffer, or is dropped by the client at the sample rate emit_metric gives,
                # which the line then carries
                max_metric_samples_per_context=0,
                # counts, gauges and the buffer go out every metrics interval, as the other
                # providers export (and sooner when the buffer fills a datagram)
                flush_interval=config.metrics.interval,
                disable_telemetry=True,
            )
        self._tag_lists: dict[tuple[tuple[str, Any], ...], list[str]] = {}
        # ddtrace's work per span and the DogStatsD client's per call (bench.datadog_overhead)
        # are done on the queue's thread, where they overlap the loop's waits on PostgreSQL
        # instead of delaying every claim and report
        self.sender = TelemetryQueue("rhythm-datadog", self.send_trace, self.emit_metric)

    def send_trace(self, _trace_id: str, spans: list[Span]) -> None:
        """All started before any finishes: ddtrace writes them as one trace chunk instead of
        one chunk per span. A span that fails is lost alone."""
        started = []
        for span in spans:
            try:
                started.append((self.start_span(span), span))
            except Exception:
                log.debug("rhythm-datadog: a span failed", exc_info=True)
        for native, span in started:
            try:
                self.finish_span(native, span)
            except Exception:
                log.debug("rhythm-datadog: a span failed to finish", exc_info=True)

    def start_span(self, span: Span) -> Any:
        """A ddtrace span with the core's ids, start time, tags and error."""
        settings = self.settings
        parent = span.parent_span_id
        context = self.context(
            trace_id=int(span.trace_id, 16),
            span_id=int(parent, 16) if parent else None,
            sampling_priority=USER_KEEP if span.kept_for_error else AUTO_KEEP,
        )
        attributes = span.attributes
        native = self.tracer.start_span(
            span.name,
            child_of=context,
            service=settings.service,
            resource=str(attributes.get("rhythm.function_name") or span.name),
            span_type="sql" if span.name.startswith("db.") else settings.span_type,
        )
        native.span_id = int(span.span_id, 16)
        native.start_ns = span.start_ns
        tags: dict[str, str] = dict(self.tags)
        numbers: dict[str, float] = {}
        for key, value in attributes.items():
            if value.__class__ in (int, float):  # not bool: a tag, "True"
                numbers[key] = value
            else:
                tags[key] = str(value)
        native.set_tags(tags)
        native.set_metrics(numbers)
        if span.status == ERROR:
            native.error = 1
            native.set_tag("error.type", span.error_type or "Exception")
            native.set_tag("error.message", span.error_message or "")
            if span.error_stack:
                native.set_tag("error.stack", span.error_stack)
        if span.kept_for_error:
            native.set_tag("manual.keep")  # a failure always reaches Datadog
            native.set_tag("rhythm.sampling.kept_for_error", "true")
        return native

    @staticmethod
    def finish_span(native: Any, span: Span) -> None:
        # seconds as a float: ddtrace's public finish() (within a quarter of a microsecond)
        native.finish((span.end_ns or span.start_ns) / 1e9)

    def emit_metric(self, point: MetricPoint) -> None:
        statsd, tags = self.statsd, self.tag_list(point.attributes)
        if point.kind == HISTOGRAM:
            observed = point.each()
            # a sample rate keeps LINES_PER_POINT of them on average; Datadog counts each
            # line as 1/rate values, so counts and percentiles stay right
            rate = min(1.0, LINES_PER_POINT / len(observed))
            distribution, name = statsd.distribution, point.name
            for value in observed:
                distribution(name, value, tags, rate)
        elif point.kind == COUNTER:
            statsd.increment(point.name, point.value, tags)
        elif point.kind == GAUGE:
            statsd.gauge(point.name, point.value, tags)

    def tag_list(self, attributes: Mapping[str, Any]) -> list[str]:
        key = tuple(attributes.items())
        found = self._tag_lists.get(key)
        if found is None:
            found = [f"{k}:{v}" for k, v in key]
            if len(self._tag_lists) < 4096:  # label sets are few; stay bounded if not
                self._tag_lists[key] = found
        return found

    def send_now(self) -> None:
        """Have ddtrace's writer and the DogStatsD client send what they hold."""
        if self.tracer is not None:
            self.tracer.flush()
        if self.statsd is not None:
            self.statsd.flush_aggregated_metrics()
            self.statsd.flush()

    def shutdown(self, timeout: float) -> None:
        self.sender.shutdown(timeout)
        self.send_now()
        if self.statsd is not None:
            self.statsd.stop(timeout)
        if self.sender.dropped:
            # what ddtrace's writer drops (an agent that is down) it reports itself
            log.warning(
                "rhythm-datadog: %d span(s) or metric point(s) could not be delivered while "
                "this process ran",
                self.sender.dropped,
            )


# The DogStatsD client's own tags from the environment, which it adds to every metric.
_STATSD_ENV_TAGS = {"DD_ENV": "env", "DD_SERVICE": "service", "DD_VERSION": "version"}
# ddtrace machinery a worker does not use, off unless the user's own variable turns it on:
# instrumentation telemetry and remote configuration each run a thread and post to the agent.
QUIET_DEFAULTS = {
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
}


def constant_tags(service: str, tags: Mapping[str, str]) -> list[str]:
    """The service and the configured tags for every metric, less those the DogStatsD
    client adds itself from ``DD_ENV``, ``DD_SERVICE``, ``DD_VERSION`` and ``DATADOG_TAGS``
    (they would reach Datadog twice)."""
    from_env = {tag for tag in os.environ.get("DATADOG_TAGS", "").split(",") if tag}
    from_env |= {
        f"{name}:{os.environ[var]}" for var, name in _STATSD_ENV_TAGS.items() if os.environ.get(var)
    }
    ours = [f"service:{service}", *(f"{k}:{v}" for k, v in tags.items())]
    return [tag for tag in ours if tag not in from_env]


def _point_ddtrace_at(agent_url: str | None) -> None:
    """ddtrace reads its agent address from ``DD_TRACE_AGENT_URL`` when it is first imported,
    and its tracer (one per process) cannot be re-pointed afterwards through any public API
    (the private ``Tracer._agent_url`` setter does not reach ddtrace 4's native writer): pass
    ours before the first import, and say so when it comes too late. :data:`QUIET_DEFAULTS`
    go in the same way, where the user has not set them."""
    if "ddtrace" not in sys.modules:
        for variable, value in QUIET_DEFAULTS.items():
            os.environ.setdefault(variable, value)
    if not agent_url:
        return
    if "ddtrace" not in sys.modules:
        os.environ["DD_TRACE_AGENT_URL"] = agent_url
        return
    from ddtrace.trace import tracer

    current = getattr(tracer, "_agent_url", None)
    if current and current.rstrip("/") != agent_url.rstrip("/"):
        log.warning(
            "rhythm-datadog: ddtrace was imported before this configuration and sends to %s; "
            "the configured agent %s is not used (set DD_TRACE_AGENT_URL for the process)",
            current,
            agent_url,
        )


class DatadogPlugin(BackendPlugin[_Backend]):
    """Spans of rhythm-core through ddtrace, metrics through DogStatsD."""

    name = NAME

    def build(self, config: ObservabilityConfig) -> _Backend:
        return _Backend(config, resolve(config))

    # -- spans -----------------------------------------------------------------------------

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        """Queued for the sending thread, which builds the ddtrace span with the core's ids
        and times (parents are named by id, so nothing needs it earlier)."""
        backend = self.backend
        if backend is not None and backend.tracer is not None:
            backend.sender.put(span)

    # -- the application's own instrumentation --------------------------------------------

    @hookimpl
    def rhythm_span_activate(self, context: SpanContext) -> AbstractContextManager[object] | None:
        """A ddtrace span with the core's ids becomes the active one in ddtrace's context
        provider: spans of ddtrace's integrations (``ddtrace.patch``) and of the application
        become its children, and its propagation headers carry the trace."""
        backend = self.backend
        if backend is None or backend.tracer is None:
            return None
        return _Active(backend, context)

    # -- propagation -----------------------------------------------------------------------

    @hookimpl
    def rhythm_context_inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        """Datadog's headers (and W3C, per ``DD_TRACE_PROPAGATION_STYLE``) for the core's
        span; with no core span, for the application's current ddtrace span, which then
        parents the execution."""
        backend = self.backend
        if backend is None or backend.tracer is None:
            return
        if span is None:
            current = backend.tracer.current_span()
            if current is None:
                return
            context = current.context
        else:
            context = backend.context(
                trace_id=int(span.trace_id, 16),
                span_id=int(span.span_id, 16),
                sampling_priority=AUTO_KEEP if span.sampled else AUTO_REJECT,
            )
        headers: dict[str, str] = {}
        backend.propagator.inject(context, headers)
        for key, value in headers.items():
            carrier.setdefault(key, value)  # the core's own W3C fields stay as written

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        backend = self.backend
        if backend is None or backend.tracer is None:
            return None
        found = backend.propagator.extract(dict(carrier))  # type: ignore[no-untyped-call]
        if not found.trace_id or not found.span_id:
            return None
        return SpanContext(
            f"{found.trace_id:032x}",
            f"{found.span_id:016x}",
            (found.sampling_priority or 0) > 0,
            "",
        )

    # -- metrics ---------------------------------------------------------------------------

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        backend = self.backend
        if backend is not None and backend.statsd is not None:
            backend.sender.put(point)

    def flush(self, timeout: float = 30.0) -> bool:
        """Hand everything queued to ddtrace and DogStatsD now, and have both send it."""
        backend = self.backend
        if backend is None:
            return True
        done = backend.sender.flush(timeout)
        backend.send_now()
        return done


class _Active:
    """Activates a stand-in ddtrace span with the core's ids (sampling priority from the
    core's decision), and puts back what was active before.

    A span, not a bare ``Context``: ddtrace makes a finishing span's parent the active one
    again, and a span whose parent is a ``Context`` has none, so the first child to finish
    would leave the rest of the block with nothing active. The stand-in is made directly,
    not through the tracer, so ddtrace neither sends it (the core sends the attempt's own
    span) nor holds its children back waiting for it to finish."""

    __slots__ = ("_backend", "_context", "_previous")

    def __init__(self, backend: _Backend, context: SpanContext) -> None:
        self._backend = backend
        self._context = context

    def __enter__(self) -> None:
        backend, core = self._backend, self._context
        trace_id, span_id = int(core.trace_id, 16), int(core.span_id, 16)
        stand_in = backend.native_span(
            "rhythm.current",
            trace_id=trace_id,
            span_id=span_id,
            context=backend.context(
                trace_id=trace_id,
                span_id=span_id,
                sampling_priority=AUTO_KEEP if core.sampled else AUTO_REJECT,
            ),
        )
        provider = backend.tracer.context_provider
        self._previous = provider.active()
        provider.activate(stand_in)

    def __exit__(self, *exc_info: object) -> None:
        self._backend.tracer.context_provider.activate(self._previous)
