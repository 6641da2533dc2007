"""The spans of one attempt, built once its outcome is written, one function per span.

An attempt's trace (reference document, "span hierarchy")::

    <type>.<function>            the execution (consumer), on its final outcome only
    ├── db.claim_execution       the claim statement that took it
    ├── serialization            decoding arguments / encoding the result (large payloads)
    ├── function.invoke          the call (workflow.replay for a workflow pass)
    └── db.report_result         the statement that wrote the outcome
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import store
from ..ids import new_span_id, new_trace_id
from .attempt import AttemptRecord, Failure
from .context import ClaimedContext
from .telemetry import CLIENT, CONSUMER, INTERNAL, OK, Span

if TYPE_CHECKING:
    from ..store import Claimed

# Attribute names: the reference document's, and OpenTelemetry's messaging and database
# semantic conventions beside them.
MESSAGING = {"messaging.system": "rhythm"}
DATABASE = {"db.system.name": "postgresql"}
# Serialization spans for smaller payloads would be noise (the metric still sees them all).
SERIALIZATION_SPAN_MIN_BYTES = 1024


@dataclass(slots=True)
class Attempt:
    """What every span of one attempt shares; ``base`` holds the attributes all of them
    carry (the reference document's, and the messaging conventions')."""

    row: Claimed
    record: AttemptRecord
    context: ClaimedContext
    worker_id: str
    base: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        row = self.row
        self.base = {
            "rhythm.execution_id": row.id,
            "rhythm.execution_type": row.type,
            "rhythm.function_name": row.function_name,
            "queue_name": row.queue,
            "rhythm.attempt": row.attempt,
            **MESSAGING,
            "messaging.destination.name": row.queue,
            "messaging.message.id": row.id,
        }

    def span(
        self,
        name: str,
        start: int,
        end: int,
        kind: str,
        attributes: dict[str, Any],
        *,
        span_id: str | None = None,
        parent_id: str | None = "",
    ) -> Span:
        """A finished span of this attempt's trace; by default a new span id, whose parent is
        the execution's span."""
        context = self.context
        built = Span(
            name,
            context.trace_id,
            span_id or new_span_id(),
            context.span_id if parent_id == "" else parent_id,
            start,
            kind,
            end,
            attributes,
            OK,
        )
        if not context.sampled:
            built.sampled = False
            built.kept_for_error = True  # an unsampled attempt's spans are built only then
            attributes["rhythm.sampling.kept_for_error"] = True
        if context.links:
            built.links = context.links
        return built


def attempt_spans(
    row: Claimed,
    kind: str,
    final: bool,
    report_start: int,
    report_end: int,
    worker_id: str,
) -> list[Span]:
    """Every span of the attempt whose outcome ``kind`` was written between ``report_start``
    and ``report_end``; the execution's own span too when the outcome is ``final``."""
    record = row.record
    assert record is not None and record.context is not None
    attempt = Attempt(row, record, record.context, worker_id)
    spans = [claim_span(attempt), *serialization_spans(attempt)]
    if record.start:
        spans.append(invoke_span(attempt))
    spans.append(report_span(attempt, kind, report_start, report_end))
    spans.extend(record._buffer or ())  # user spans, kept for the error
    if final:
        spans.append(execution_span(attempt, kind, report_end))
    return spans


def claim_span(attempt: Attempt) -> Span:
    record = attempt.record
    attributes = {
        **attempt.base,
        **DATABASE,
        "db.operation.name": "UPDATE",
        "messaging.operation.type": "receive",
        "worker_id": attempt.worker_id,
    }
    return attempt.span(
        "db.claim_execution", record.claim_start, record.claim_end, CLIENT, attributes
    )


def serialization_spans(attempt: Attempt) -> list[Span]:
    """Decoding the arguments and encoding the result, each when it was large enough."""
    row, record = attempt.row, attempt.record
    timings = (
        (record.decode_start, record.start, len(row.args) + len(row.kwargs), "deserialize"),
        (record.end, record.encode_end, record.result_size, "serialize"),
    )
    return [
        attempt.span(
            "serialization",
            start,
            end,
            INTERNAL,
            {"payload_size": size, "format": "json", "direction": direction},
        )
        for start, end, size, direction in timings
        if start and end and size >= SERIALIZATION_SPAN_MIN_BYTES
    ]


def invoke_span(attempt: Attempt) -> Span:
    """``function.invoke`` (``workflow.replay`` for a workflow pass): the call itself."""
    row, record = attempt.row, attempt.record
    attributes = {
        **attempt.base,
        "messaging.operation.type": "process",
        "function_name": row.function_name,
        "execution_type": row.type,
    }
    if row.type == "workflow":
        attributes.update(
            workflow_name=row.function_name,
            replay_count=row.replays,
            checkpoint_size=row.history_size,
        )
    name = "workflow.replay" if row.type == "workflow" else "function.invoke"
    span = attempt.span(
        name, record.start, record.end or record.start, INTERNAL, attributes, span_id=record.span_id
    )
    if record.error is not None:
        _set_error(span, record.error)
    return span


def report_span(attempt: Attempt, kind: str, start: int, end: int) -> Span:
    attributes = {
        **attempt.base,
        **DATABASE,
        "db.operation.name": "UPDATE",
        "execution_id": attempt.row.id,
        "status": kind,
        "result_size": attempt.record.result_size,
    }
    return attempt.span("db.report_result", start, end, CLIENT, attributes)


def execution_span(attempt: Attempt, kind: str, end: int) -> Span:
    """The execution's span, from its creation to its final outcome (the span id and parent
    stored in its row)."""
    row, record, context = attempt.row, attempt.record, attempt.context
    attributes = {**attempt.base, "status": kind, "worker_id": attempt.worker_id}
    span = attempt.span(
        f"{row.type}.{row.function_name}",
        row.created_ns,
        end,
        CONSUMER,
        attributes,
        span_id=context.span_id,
        parent_id=context.parent.span_id if context.parent else None,
    )
    error = record.error or record.failure
    if kind == store.FAILED and error is not None:
        _set_error(span, error)
    return span


def standalone_span(
    name: str,
    start_ns: int,
    end_ns: int,
    attributes: dict[str, Any],
    error: BaseException | None = None,
) -> Span:
    """A span that is its own trace (a heartbeat, a dead-worker check)."""
    span = Span(
        name, new_trace_id(), new_span_id(), None, start_ns, INTERNAL, end_ns, attributes, OK
    )
    if error is not None:
        span.set_error(type(error).__name__, str(error))
    return span


def _set_error(span: Span, failure: Failure) -> None:
    span.set_error(failure.type, failure.message, failure.stack)
