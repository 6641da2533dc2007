"""What the instrumentation keeps of a running attempt, and the span that is current.

A claimed row carries an :class:`AttemptRecord` when observability is on (None when off).
The worker stamps its times as it decodes, calls and encodes; the spans of the attempt are
built from them once the outcome is written (:mod:`.spans`), because only then is it known
whether an unsampled trace is kept for an error (``sample_errors``).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..current import _current
from ..ids import new_span_id
from .context import ClaimedContext
from .telemetry import Span, SpanContext

if TYPE_CHECKING:
    from .manager import Activation, Observability


@dataclass(slots=True)
class Position:
    """The span that is current in this context (what new spans and executions hang under).

    :ivar buffer: where spans go when the trace is not sampled but may be kept for an error
        (inside an attempt, with ``sample_errors``); None to drop them.
    """

    trace_id: str
    span_id: str
    sampled: bool
    buffer: list[Span] | None = None


@dataclass(slots=True)
class Failure:
    """An exception as the spans show it."""

    type: str
    message: str
    stack: str = ""


@dataclass(slots=True, kw_only=True)
class AttemptRecord:
    """One claimed execution's attempt, kept until its outcome is written.

    While the attempt runs it is also the current :class:`Position` (same four fields), so
    spans and executions made by user code hang under the attempt's span. Times are
    nanoseconds since the epoch; 0 means it did not happen.
    """

    claim_start: int
    claim_end: int
    context: ClaimedContext | None = None  # None: not read (tracing off, or ``lazy``)
    trace_id: str = ""
    span_id: str = ""  # the attempt's span (function.invoke or workflow.replay); "" = not yet
    sampled: bool = False
    keep: bool = False  # unsampled, but its spans are kept if the attempt fails (sample_errors)
    lazy: bool = False  # an unsampled row whose carrier is read only if it is needed
    decode_start: int = 0  # decoding the arguments began (it ends at ``start``)
    start: int = 0  # the function was called
    end: int = 0  # it returned or raised
    encode_end: int = 0  # encoding its result ended (it began at ``end``)
    result_size: int = 0  # bytes of the encoded result
    error: Failure | None = None  # raised by the function
    failure: Failure | None = None  # raised around it (unknown function, result)
    _buffer: list[Span] | None = None

    @property
    def buffer(self) -> list[Span] | None:
        """Where spans of an unsampled attempt wait in case it fails (made on first use: most
        attempts never make one); None when they would not be kept."""
        found = self._buffer
        if found is None and self.keep:
            found = self._buffer = []
        return found

    @property
    def traced(self) -> bool:
        """Tracing is on for this attempt: its context was read, or left unread to be read
        if needed (children, user spans, a kept failure)."""
        return self.context is not None or self.lazy

    @property
    def trace_problem(self) -> str | None:
        """Why the row's stored trace context was unusable (it runs in a new trace), or None."""
        return self.context.problem if self.context is not None else None


# A span opened by user code (rhythm_core.trace.span); None outside one.
current: ContextVar[Position | AttemptRecord | None] = ContextVar(
    "rhythm_current_span", default=None
)


def current_position() -> Position | AttemptRecord | None:
    """What new spans and executions hang under here: the innermost span user code opened,
    else the running attempt (when tracing is on), else nothing."""
    found = current.get()
    if found is not None:
        return found
    execution = _current.get()
    record = execution._record if execution is not None else None
    if record is not None and record.traced:
        found = record
    return found


def position_context(position: Position | AttemptRecord) -> SpanContext:
    if not position.span_id:  # an unsampled attempt's span id is made when first needed
        position.span_id = new_span_id()
    return SpanContext(position.trace_id, position.span_id, position.sampled)


def activation(
    observability: Observability, record: AttemptRecord | None, replaying: bool = False
) -> Activation | None:
    """What makes the attempt's span current in the backends' own contexts while its user
    code runs (unsampled while a workflow replays recorded steps); None when no provider
    does that, or the attempt is not traced."""
    if not observability.activating or record is None or not record.traced or not record.trace_id:
        return None
    context = position_context(record)
    if replaying and context.sampled:
        context = SpanContext(context.trace_id, context.span_id, False)
    return observability.activated(context)
