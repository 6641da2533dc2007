"""An observability plugin that records everything it is given, in memory."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

from ..observability.config import ObservabilityConfig
from ..observability.hookspecs import hookimpl
from ..observability.telemetry import MetricPoint, Span, SpanContext

# What a RecordingPlugin made current here (rhythm_span_activate), as a backend's own context
# would hold it: user code reads it with made_current().
_made_current: ContextVar[SpanContext | None] = ContextVar("rhythm_recording_current", default=None)


def made_current() -> SpanContext | None:
    """The span a :class:`RecordingPlugin` made current in this context, or None."""
    return _made_current.get()


class RecordingPlugin:
    """Keeps spans (when they end), metric points, injected carriers and lifecycle calls.

    ``inject`` (optional) is written into every carrier; ``ambient`` (optional) is a W3C
    traceparent it reports as the application's current span when the core has none.
    """

    name = "recording"

    def __init__(self, *, ambient: str | None = None) -> None:
        self.lock = threading.Lock()
        self.ambient = ambient
        self.started: list[Span] = []
        self.spans: list[Span] = []
        self.points: list[MetricPoint] = []
        self.carriers: list[dict[str, str]] = []
        self.configured: list[ObservabilityConfig] = []
        self.shutdowns: list[float] = []

    @hookimpl
    def rhythm_observability_configure(self, config: ObservabilityConfig) -> None:
        self.configured.append(config)

    # list.append is atomic in CPython: no lock on the paths the core calls per execution
    @hookimpl
    def rhythm_span_start(self, span: Span) -> None:
        self.started.append(span)

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        self.spans.append(span)

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        self.points.append(point)

    @hookimpl
    def rhythm_context_inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        if span is None:
            if self.ambient:
                carrier["traceparent"] = self.ambient
            return
        carrier["x-recording-span"] = span.span_id
        with self.lock:
            self.carriers.append(dict(carrier))

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        return None

    @hookimpl
    def rhythm_span_activate(self, context: SpanContext) -> contextlib.AbstractContextManager[None]:
        return _current_while(context)

    @hookimpl
    def rhythm_observability_shutdown(self, timeout: float) -> None:
        self.shutdowns.append(timeout)

    # -- reading ---------------------------------------------------------------------------

    def named(self, name: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.name == name]

    def in_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def metric(self, name: str) -> list[MetricPoint]:
        with self.lock:
            return [p for p in self.points if p.name == name]

    def total(self, name: str, **labels: Any) -> float:
        return sum(
            p.value
            for p in self.metric(name)
            if all(p.attributes.get(k) == v for k, v in labels.items())
        )

    def wait_for(self, check: Callable[[RecordingPlugin], Any], timeout: float = 10.0) -> Any:
        """Poll ``check(self)`` until it is truthy: a worker emits an attempt's spans and
        metrics just after writing its outcome, so a test that waited for the outcome must
        wait a moment more for them. Returns the last result."""
        deadline = time.monotonic() + timeout
        while True:
            result = check(self)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.01)

    def clear(self) -> None:
        with self.lock:
            self.started.clear()
            self.spans.clear()
            self.points.clear()
            self.carriers.clear()


@contextlib.contextmanager
def _current_while(context: SpanContext) -> Iterator[None]:
    token = _made_current.set(context)
    try:
        yield
    finally:
        _made_current.reset(token)
