"""Custom instrumentation for user code: ``from rhythm_core import trace, metrics``.

    with trace.span("validate_order", order_id=order_id):
        ...
    metrics.increment("orders.processed", tags={"status": "success"})

Spans are parented to the running function's span (or to the enclosing custom span). Both
are no-ops when observability is off, and while a workflow replays recorded steps (so a
replay does not repeat them).

A custom span's name and attributes are the application's values. They are made what every
provider can send (:func:`sendable`) when the span opens, and its attributes again when it
ends, so that one odd value costs neither the trace nor the block's own exception.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..ids import new_span_id, new_trace_id
from ..replay import is_replaying
from ..serialization import readable, storable_text, traceback_text
from .attempt import Position, current, current_position
from .manager import active
from .telemetry import COUNTER, GAUGE, HISTOGRAM, OK, MetricPoint, Span, SpanContext

INT64 = range(-(2**63), 2**63)  # what OTLP, ddtrace's metrics and X-Ray carry as integers


def sendable(value: object) -> str | bool | int | float:
    """An attribute value as every provider sends it: strings (NUL and lone surrogates
    escaped), booleans, integers within 64 bits and finite floats as they are; anything
    else, NaN and infinities included, as its text."""
    if isinstance(value, bool):
        return value
    if type(value) is int and value in INT64:
        return value
    if type(value) is float and math.isfinite(value):
        return value
    return text_of(value)


def text_of(value: object) -> str:
    """``value`` as text a provider can send (a name or key of the application's)."""
    return storable_text(value if isinstance(value, str) else readable(value))


class _Trace:
    @contextlib.contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[Span | None]:
        """Open a span around a block; yields the :class:`Span` (None when not recorded)."""
        obs = active()
        if not obs.tracing or is_replaying():
            yield None
            return
        parent = current_position()
        if parent is not None and not parent.span_id:  # an unsampled attempt's, made lazily
            parent.span_id = new_span_id()
        if parent is None:  # application code outside any execution: a new root trace
            sampled = random.random() < obs.config.traces.sample_rate
            parent = Position(new_trace_id(), "", sampled)
        span = Span(
            text_of(name),
            parent.trace_id,
            new_span_id(),
            parent.span_id or None,
            time.time_ns(),
            attributes=_sendable(attributes),
            sampled=parent.sampled,
        )
        live = parent.sampled
        if live:
            obs.span_start(span)
        token = current.set(Position(span.trace_id, span.span_id, span.sampled, parent.buffer))
        # the application's own spans opened in the block nest under this one
        made_current = None
        if obs.activating:
            made_current = obs.activated(SpanContext(span.trace_id, span.span_id, span.sampled))
            made_current.__enter__()
        try:
            yield span
        except BaseException as exc:
            span.set_error(
                type(exc).__name__, storable_text(readable(exc)), storable_text(traceback_text(exc))
            )
            raise
        else:
            span.status = OK if span.status != "error" else span.status
        finally:
            if made_current is not None:
                made_current.__exit__(None, None, None)
            current.reset(token)
            span.end_ns = time.time_ns()
            span.attributes = _sendable(span.attributes)  # as set in the block too
            if live:
                obs.span_end(span)
            elif parent.buffer is not None:  # kept if the execution's attempt fails
                parent.buffer.append(span)


def _sendable(attributes: Mapping[Any, Any]) -> dict[str, Any]:
    return {text_of(key): sendable(value) for key, value in attributes.items()}


class _Metrics:
    def _emit(
        self, name: str, kind: str, value: float, unit: str, tags: Mapping[str, Any] | None
    ) -> None:
        obs = active()
        if obs.metering and not is_replaying():
            obs.metric(MetricPoint(name, kind, value, unit, dict(tags or {}), time.time_ns()))

    def increment(
        self, name: str, value: float = 1, *, tags: Mapping[str, Any] | None = None, unit: str = "1"
    ) -> None:
        """Add ``value`` to a counter."""
        self._emit(name, COUNTER, value, unit, tags)

    def histogram(
        self, name: str, value: float, *, tags: Mapping[str, Any] | None = None, unit: str = "1"
    ) -> None:
        """Record one observation (use ``unit="s"`` for durations in seconds)."""
        self._emit(name, HISTOGRAM, value, unit, tags)

    def gauge(
        self, name: str, value: float, *, tags: Mapping[str, Any] | None = None, unit: str = "1"
    ) -> None:
        """Set a gauge to its current value."""
        self._emit(name, GAUGE, value, unit, tags)


trace = _Trace()
metrics = _Metrics()
