"""What the core hands to observability plugins: span contexts, spans and metric points.

Plugins receive these objects through the hooks in :mod:`.hookspecs`. Ids are lower-case hex
strings made by the core (:mod:`rhythm_core.ids`); times are Unix nanoseconds, set by the core
and to be honoured rather than re-read from a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Span kinds, after OpenTelemetry's.
INTERNAL, CLIENT, PRODUCER, CONSUMER = "internal", "client", "producer", "consumer"
# Span status codes.
UNSET, OK, ERROR = "unset", "ok", "error"
# Metric kinds.
COUNTER, HISTOGRAM, GAUGE = "counter", "histogram", "gauge"


# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__ per field, and
# these are made for every traced execution.
@dataclass(slots=True)
class SpanContext:
    """A position in a trace: the ids a child needs to join it.

    :ivar trace_id: 32 lower-case hex digits; the first 8 are the Unix time in seconds.
    :ivar span_id: 16 lower-case hex digits, never all zero.
    :ivar sampled: whether the trace was kept by head sampling at its root.
    :ivar tracestate: the W3C ``tracestate`` value carried along, or ``""``.
    :ivar baggage: W3C baggage entries carried along (bounded, secrets dropped).
    """

    trace_id: str
    span_id: str
    sampled: bool = True
    tracestate: str = ""
    baggage: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, eq=False)
class Span:
    """One operation in a trace.

    :ivar name: e.g. ``task.send_email``, ``db.claim_execution``, ``function.invoke``.
    :ivar trace_id: the trace's id (same as ``executions.trace_id``).
    :ivar span_id: this span's id (for an execution span, ``executions.span_id``).
    :ivar parent_span_id: the parent's span id, or None for a root span.
    :ivar kind: ``internal``, ``client``, ``producer`` or ``consumer``.
    :ivar start_ns: start, Unix nanoseconds.
    :ivar end_ns: end, Unix nanoseconds; None until the span ends.
    :ivar attributes: attribute names to str (no NUL, no lone surrogate), bool, int (within
        64 bits) or finite float values; the core makes custom spans' values so.
    :ivar status: ``unset``, ``ok`` or ``error``.
    :ivar error_type: the exception's type name when ``status`` is ``error``.
    :ivar error_message: the exception's message.
    :ivar error_stack: the formatted traceback, when known.
    :ivar sampled: True when the trace was kept by head sampling.
    :ivar kept_for_error: True when the trace was not sampled but this span is emitted because
        its execution failed (``sample_errors``).
    :ivar links: contexts this span links to (for a new root trace started because a carrier
        was malformed: what could be read of it).
    :ivar native: per-plugin storage for the plugin's own span object, keyed by plugin name.
    """

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    kind: str = INTERNAL
    end_ns: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = UNSET
    error_type: str | None = None
    error_message: str | None = None
    error_stack: str | None = None
    sampled: bool = True
    kept_for_error: bool = False
    links: tuple[SpanContext, ...] = ()  # immutable: no list allocated per span
    # made on first use: most spans are built after the fact and never need one, and a dict
    # per span is a third of what a plugin that keeps spans leaves to the garbage collector
    _native: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def native(self) -> dict[str, Any]:
        found = self._native
        if found is None:
            found = self._native = {}
        return found

    @property
    def context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id, self.sampled)

    def set_error(self, error_type: str, message: str, stack: str | None = None) -> None:
        self.status, self.error_type, self.error_message = ERROR, error_type, message
        self.error_stack = stack
        self.attributes["error.type"] = error_type


@dataclass(slots=True)
class MetricPoint:
    """One measurement (treat as read-only: ``attributes`` dicts may be shared).

    :ivar name: a catalogue name (``rhythm.executions.claimed``...) or a custom one.
    :ivar kind: ``counter`` (``value`` is the increment), ``histogram`` or ``gauge`` (the
        current value, up or down).
    :ivar value: the number; for a histogram, the sum of its observations.
    :ivar unit: UCUM unit: ``s`` for durations, ``{execution}``, ``{worker}``, ``By``...
    :ivar attributes: label names to values; never execution ids.
    :ivar time_ns: when it was measured, Unix nanoseconds.
    :ivar observations: for a histogram, every observation (the core sends those of one batch of
        executions in one point); empty means the single observation ``value``.
    """

    name: str
    kind: str
    value: float
    unit: str
    attributes: dict[str, Any]
    time_ns: int
    observations: tuple[float, ...] = ()

    def each(self) -> tuple[float, ...]:
        """A histogram's observations (``value`` alone when none were batched)."""
        return self.observations or (self.value,)
