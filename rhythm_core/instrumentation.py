"""Turning engine events into spans and metric points.

The worker holds an :class:`Instruments` only when observability is on, and calls it at a
few points (claim, attempt start and end, report, suspend, heartbeat). Spans of an
execution's attempt are built when its outcome is written, from timings taken along the
way: only then is it known whether an unsampled trace must be kept because the attempt
failed (``sample_errors``). Spans opened by user code (``rhythm_core.trace.span``) are live
when their trace is sampled, and buffered otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from . import store
from .current import _current
from .plugins import Observability
from .serialization import encode
from .telemetry import (
    CLIENT,
    CONSUMER,
    COUNTER,
    GAUGE,
    HISTOGRAM,
    INTERNAL,
    OK,
    MetricPoint,
    Span,
    SpanContext,
)
from .telemetry import (
    PRODUCER as PRODUCER_KIND,
)
from .tracecontext import (
    ONE_SPAN,
    ZERO_SPAN,
    CarrierError,
    ClaimedContext,
    all_ids,
    are_ids,
    build_carrier,
    execution_id_of,
    is_trace_id,
    new_execution_id,
    new_span_id,
    new_trace_id,
    random_hex,
    read_carrier,
    read_claimed,
    trace_id_head,
    unsampled_at_a_glance,
)

if TYPE_CHECKING:
    from .store import Claimed, NewExecution

# Attribute names: the reference document's, and OpenTelemetry's messaging and database
# semantic conventions beside them.
MESSAGING = {"messaging.system": "rhythm"}
DATABASE = {"db.system.name": "postgresql"}


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
class AttemptRecord:
    """Timings of one claimed execution's attempt, kept until its outcome is written.

    While the attempt runs it is also the current :class:`Position` (same four fields), so
    spans and executions made by user code hang under the attempt's span. The worker stamps
    the times itself, as plain integers (0 = did not happen): no call and no tuple per
    execution on the path every execution takes.
    """

    # The fields a claim sets come first: the claim loop passes them by position, which costs
    # half as much as by keyword for a class this wide.
    context: ClaimedContext | None
    claim_start: int
    claim_end: int
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
    error: tuple[str, str, str] | None = None  # raised by the function
    failure: tuple[str, str, str] | None = None  # raised around it (unknown function, result)
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


# Serialization spans for smaller payloads would be noise (the metric still sees them all).
SERIALIZATION_SPAN_MIN_BYTES = 1024
# A point per series per claim or report batch made thousands of points a second on a busy
# worker, each a hook call and an object the plugin keeps until it exports; backends export
# every few seconds, so a quarter of a second's delay changes nothing they show.
FLUSH_EVERY_NS = 250_000_000


_queue_and_type = attrgetter("queue", "type")
_COMPLETED = store.COMPLETED
_FINAL = frozenset((store.COMPLETED, store.FAILED))
_KEPT_FOR_ERROR = frozenset((store.FAILED, store.RETRY))  # outcomes sample_errors keeps


def _seconds(start_ns: int, end_ns: int) -> float:
    return max(end_ns - start_ns, 0) / 1e9


class Instruments:
    """Engine-side recording for one worker. Histogram observations and counter increments
    are gathered per series and sent as one point per series at most every
    :data:`FLUSH_EVERY_NS`, at an idle poll, and when the worker stops (:meth:`flush`)."""

    def __init__(self, observability: Observability, worker_id: str) -> None:
        self.obs = observability
        self.tracing = observability.tracing
        self.metering = observability.metering
        traces = observability.config.traces
        self.sample_rate = traces.sample_rate
        self.sample_errors = traces.sample_errors
        self.worker_id = worker_id
        self.worker_label = worker_id if observability.config.metrics.worker_id_label else None
        self._labels: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._series: dict[tuple[str, int], tuple[dict[str, Any], list[float]]] = {}
        self._by_function: dict[tuple[str, str, str], list[float]] = {}
        self._by_outcome: dict[tuple[str, str, str], list[float]] = {}
        self._counts: dict[tuple[str, str, int], tuple[dict[str, Any], list[float]]] = {}
        self._flush_due = 0
        self._decode_values = self._series_values(
            "rhythm.serialization.duration", {"direction": "deserialize", "format": "json"}
        )
        self._encode_values = self._series_values(
            "rhythm.serialization.duration", {"direction": "serialize", "format": "json"}
        )

    # -- metrics ---------------------------------------------------------------------------

    def labels(self, *pairs: tuple[str, Any]) -> dict[str, Any]:
        """One shared dict per label set (points are never mutated), so emitting is cheap."""
        found = self._labels.get(pairs)
        if found is None:
            found = self._labels[pairs] = {k: v for k, v in pairs if v is not None}
        return found

    def count(self, name: str, value: float, unit: str, labels: dict[str, Any]) -> None:
        """Add a counter increment (sent at the next :meth:`flush`)."""
        key = (name, unit, id(labels))
        series = self._counts.get(key)
        if series is None:
            series = self._counts[key] = (labels, [0])
        series[1][0] += value

    def observe(self, name: str, seconds: float, labels: dict[str, Any]) -> None:
        """Add a histogram observation (sent at the next :meth:`flush`)."""
        key = (name, id(labels))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (labels, [])
        series[1].append(seconds)

    def flush(self, *, due: bool = False) -> None:
        """Send what was gathered since the last flush, one point per series; with ``due``,
        only if :data:`FLUSH_EVERY_NS` has passed since then."""
        now = time.time_ns()
        if due and now < self._flush_due:
            return
        self._flush_due = now + FLUSH_EVERY_NS
        # each final outcome added one execution.duration observation to its label set since
        # the last flush: those counts are the completed counter's increments
        for (queue, status, kind), values in self._by_outcome.items():
            if values:
                self.count(
                    "rhythm.executions.completed",
                    len(values),
                    "{execution}",
                    self.labels(("queue", queue), ("status", status), ("execution_type", kind)),
                )
        emit = self.obs.metric
        for (name, unit, _), (labels, total) in self._counts.items():
            if total[0]:
                emit(MetricPoint(name, COUNTER, total[0], unit, labels, now))
                total[0] = 0
        for (name, _), (labels, values) in self._series.items():
            if values:
                emit(MetricPoint(name, HISTOGRAM, sum(values), "s", labels, now, tuple(values)))
                values.clear()

    def query(self, operation: str, start_ns: int, end_ns: int) -> None:
        if self.metering:
            self.observe(
                "rhythm.db.query.duration",
                _seconds(start_ns, end_ns),
                self.labels(("operation", operation)),
            )

    def gauge(self, name: str, value: float, unit: str, labels: dict[str, Any]) -> None:
        self.obs.metric(MetricPoint(name, GAUGE, value, unit, labels, time.time_ns()))

    # -- claiming --------------------------------------------------------------------------

    def claimed(self, rows: list[Claimed], queues: list[str], start_ns: int, end_ns: int) -> None:
        """A claim statement ran (``rows`` may be empty: an idle poll, which makes no span)."""
        if self.metering:
            queue_label = queues[0] if len(queues) == 1 else ",".join(queues)
            self.observe(
                "rhythm.claim_loop.duration",
                _seconds(start_ns, end_ns),
                self.labels(("worker_id", self.worker_label), ("queue", queue_label)),
            )
            self.query("claim", start_ns, end_ns)
            for (queue, kind), n in Counter(map(_queue_and_type, rows)).items():
                self.count(
                    "rhythm.executions.claimed",
                    n,
                    "{execution}",
                    self.labels(
                        ("queue", queue), ("worker_id", self.worker_label), ("execution_type", kind)
                    ),
                )
            for row in rows:
                if row.type == "workflow":
                    self.count(
                        "rhythm.workflow.replays",
                        1,
                        "{replay}",
                        self.labels(("workflow_name", row.function_name)),
                    )
            self.flush(due=bool(rows))  # an idle poll sends what is left at once
        # Everything per row is done here, in one tight loop per batch rather than scattered
        # through each execution: in a busy event loop that is several times cheaper.
        if not self.tracing:
            for row in rows:
                row.record = AttemptRecord(None, start_ns, end_ns)
            return
        rate, keep_errors, draw = self.sample_rate, self.sample_errors, random.random
        ids_checked = all_ids(rows)  # else each row's are checked on their own
        for row in rows:
            # Most rows of a sampled-down fleet are unsampled and succeed: for those only the
            # record is made; nothing is parsed unless the attempt fails or creates something.
            carrier = row.trace_context
            drawn: float | None = None
            if carrier is None:  # enqueued with tracing off: this worker is the root
                drawn = draw()
                lazy = drawn >= rate and (ids_checked or are_ids(row.trace_id, row.span_id))
            else:
                lazy = unsampled_at_a_glance(row.trace_id, row.span_id, carrier, ids_checked)
            if lazy:
                row.record = AttemptRecord(
                    None, start_ns, end_ns, row.trace_id or "", "", False, keep_errors, True
                )
                continue
            # a root's decision is the draw above: one draw per row, not two
            decide = random.random if drawn is None else itertools.repeat(drawn).__next__
            context = read_claimed(row.trace_id, row.span_id, carrier, rate, decide)
            sampled = context.sampled
            row.record = AttemptRecord(
                context,
                start_ns,
                end_ns,
                context.trace_id,
                new_span_id(),
                sampled,
                keep_errors and not sampled,
            )

    # -- one attempt -----------------------------------------------------------------------

    def context_of(self, row: Claimed) -> ClaimedContext:
        """The row's trace context, read now if it was left unread (an unsampled row)."""
        record = row.record
        if record.context is None:
            context = record.context = read_claimed(
                row.trace_id, row.span_id, row.trace_context, 0.0, decide=lambda: 0.0
            )
            record.lazy = False
            if context.trace_id != record.trace_id:  # unusable after all: a new root trace
                for span in record._buffer or ():
                    span.trace_id = context.trace_id
                record.trace_id = context.trace_id
            if not record.span_id:
                record.span_id = new_span_id()
        found: ClaimedContext = record.context
        return found

    def finish(self, row: Claimed, error: BaseException | None, stack: str = "") -> None:
        """The attempt ended without a result to encode: it raised, or a workflow pass
        suspended (the worker stamps a returning attempt's end itself)."""
        record = row.record
        record.end = time.time_ns()
        if error is not None:
            record.error = (type(error).__name__, str(error), stack)

    # -- outcomes --------------------------------------------------------------------------

    def _series_values(self, name: str, labels: dict[str, Any]) -> list[float]:
        key = (name, id(labels))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (labels, [])
        return series[1]

    def _function_values(self, row: Claimed, status: str) -> list[float]:
        """The function duration series of a function, execution type and status."""
        values = self._by_function[(row.function_name, row.type, status)] = self._series_values(
            "rhythm.function.execution.duration",
            {"function_name": row.function_name, "execution_type": row.type, "status": status},
        )
        return values

    def reported(
        self,
        outcomes: Iterable[tuple[Claimed, str]],
        start_ns: int,
        end_ns: int,
        operation: str = "report",
    ) -> None:
        """A batch of outcomes was written (``kind`` per :mod:`rhythm_core.store`, or
        ``suspended`` for a workflow pass, written by the ``suspend`` statement)."""
        metering, keep_errors = self.metering, self.sample_errors
        by_outcome, by_function = self._by_outcome, self._by_function
        decode_values, encode_values = self._decode_values, self._encode_values
        for row, kind in outcomes:
            record = row.record
            if record is None:
                continue
            final = kind in _FINAL
            if metering:
                start = record.start
                if start:  # the function was called, after its arguments were decoded
                    decode_values.append((start - record.decode_start) / 1e9)
                    end = record.end
                    if end:
                        status = "failed" if record.error is not None else "success"
                        values = by_function.get((row.function_name, row.type, status))
                        if values is None:
                            values = self._function_values(row, status)
                        values.append((end - start) / 1e9)
                        encoded = record.encode_end
                        if encoded:
                            encode_values.append((encoded - end) / 1e9)
                if final:
                    status = "success" if kind == _COMPLETED else "failed"
                    key = (row.queue, status, row.type)
                    values = by_outcome.get(key)
                    if values is None:
                        labels = {"execution_type": row.type, "queue": row.queue, "status": status}
                        values = self._by_outcome[key] = self._series_values(
                            "rhythm.execution.duration", labels
                        )
                    waited = end_ns - row.created_ns  # the database's clock against ours
                    values.append(waited / 1e9 if waited > 0 else 0.0)
            context = record.context
            if context is not None and context.sampled:
                self._attempt_spans(row, record, kind, final, start_ns, end_ns)
            elif kind in _KEPT_FOR_ERROR and keep_errors and record.traced:
                self.context_of(row)
                self._attempt_spans(row, record, kind, final, start_ns, end_ns)
        if metering:
            self.query(operation, start_ns, end_ns)
            self.flush(due=True)

    def _attempt_spans(
        self,
        row: Claimed,
        record: AttemptRecord,
        kind: str,
        final: bool,
        report_start: int,
        report_end: int,
    ) -> None:
        context = record.context
        assert context is not None
        for_error = not context.sampled  # reported() only calls for kept attempts
        base = {
            "rhythm.execution_id": row.id,
            "rhythm.execution_type": row.type,
            "rhythm.function_name": row.function_name,
            "queue_name": row.queue,
            "rhythm.attempt": row.attempt,
            **MESSAGING,
            "messaging.destination.name": row.queue,
            "messaging.message.id": row.id,
        }
        parent = context.span_id
        sampled, links = context.sampled, context.links

        def span(
            name: str,
            span_id: str,
            parent_id: str | None,
            start: int,
            end: int,
            kind_: str,
            attributes: dict[str, Any],
        ) -> Span:
            built = Span(
                name, context.trace_id, span_id, parent_id, start, kind_, end, attributes, OK
            )  # positional, and the defaults' own sampled/kept/links unless they differ
            if not sampled:
                built.sampled = False
            if for_error:
                built.kept_for_error = True
                attributes["rhythm.sampling.kept_for_error"] = True
            if links:
                built.links = links
            return built

        spans = [
            span(
                "db.claim_execution",
                new_span_id(),
                parent,
                record.claim_start,
                record.claim_end,
                CLIENT,
                {
                    **base,
                    **DATABASE,
                    "db.operation.name": "UPDATE",
                    "messaging.operation.type": "receive",
                    "worker_id": self.worker_id,
                },
            ),
        ]
        timings = (
            (record.decode_start, record.start, len(row.args) + len(row.kwargs), "deserialize"),
            (record.end, record.encode_end, record.result_size, "serialize"),
        )
        for start, end, size, direction in timings:
            if start and end and size >= SERIALIZATION_SPAN_MIN_BYTES:
                attributes = {"payload_size": size, "format": "json", "direction": direction}
                spans.append(
                    span("serialization", new_span_id(), parent, start, end, INTERNAL, attributes)
                )
        if record.start:
            name = "workflow.replay" if row.type == "workflow" else "function.invoke"
            attributes = {
                **base,
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
            attempt = span(
                name,
                record.span_id,
                parent,
                record.start,
                record.end or record.start,
                INTERNAL,
                attributes,
            )
            if record.error is not None:
                attempt.set_error(*record.error)
            spans.append(attempt)
        spans.append(
            span(
                "db.report_result",
                new_span_id(),
                parent,
                report_start,
                report_end,
                CLIENT,
                {
                    **base,
                    **DATABASE,
                    "db.operation.name": "UPDATE",
                    "execution_id": row.id,
                    "status": kind,
                    "result_size": record.result_size,
                },
            )
        )
        spans.extend(record._buffer or ())
        if final:
            execution = span(
                f"{row.type}.{row.function_name}",
                context.span_id,
                context.parent.span_id if context.parent else None,
                row.created_ns,
                report_end,
                CONSUMER,
                {**base, "status": kind, "worker_id": self.worker_id},
            )
            error = record.error or record.failure
            if kind == store.FAILED and error is not None:
                execution.set_error(*error)
            spans.append(execution)
        self.obs.emit_spans(spans)

    # -- workflows ---------------------------------------------------------------------------

    def child_parent(
        self, row: Claimed
    ) -> tuple[SpanContext | None, list[Span] | None, str | None]:
        """(parent, buffer, trace id) for the children a workflow pass creates."""
        record = row.record
        if record is None or not record.traced:
            return None, None, row.trace_id
        context = self.context_of(row)
        buffer = record.buffer  # a list when the trace may be kept for an error
        parent = SpanContext(context.trace_id, record.span_id, context.sampled)
        return parent, buffer, context.trace_id

    def suspended(self, row: Claimed, start_ns: int, end_ns: int) -> None:
        """A workflow pass ended by suspending (its children recorded)."""
        self.reported([(row, "suspended")], start_ns, end_ns, operation="suspend")


def emit_standalone(
    obs: Observability,
    name: str,
    start_ns: int,
    end_ns: int,
    attributes: dict[str, Any],
    error: BaseException | None = None,
) -> None:
    """A span that is its own trace (heartbeat, dead-worker check)."""
    span = Span(
        name, new_trace_id(), new_span_id(), None, start_ns, INTERNAL, end_ns, attributes, OK
    )
    if error is not None:
        span.set_error(type(error).__name__, str(error))
    obs.emit_span(span)


def position_context(position: Position | AttemptRecord) -> SpanContext:
    if not position.span_id:  # an unsampled attempt's span id is made when first needed
        position.span_id = new_span_id()
    return SpanContext(position.trace_id, position.span_id, position.sampled)


class Creation:
    """Trace fields for executions about to be inserted, and the spans to emit once they are.

    Every row gets a trace id and span id, observability on or off, so that the database
    alone holds the trace tree. With tracing on, rows also get a carrier (W3C fields plus what
    plugins inject) whose parent is a ``db.create_execution`` span made here.
    """

    def __init__(
        self,
        obs: Observability,
        rows: list[NewExecution],
        parent: SpanContext | None,
        trace_id: str | None = None,
        buffer: list[Span] | None = None,
    ) -> None:
        self.obs, self.rows, self.buffer = obs, rows, buffer
        self.spans: list[Span] = []
        self.start = time.time_ns()
        if not rows:
            return
        if not obs.tracing:
            if trace_id and is_trace_id(trace_id):
                _join_trace(rows, trace_id)
            else:  # none, or a parent row's stored malformed
                _own_traces(rows)
            return
        if parent is None:
            parent = _ambient_parent(obs)
        if parent is not None:
            for row in rows:
                row.id = row.id or new_execution_id()
            self._group(rows, parent.trace_id, parent, parent.sampled)
        else:
            rate = obs.config.traces.sample_rate
            for row in rows:
                self._group([row], _own_trace(row), None, random.random() < rate)

    def _group(
        self, rows: list[NewExecution], trace_id: str, parent: SpanContext | None, sampled: bool
    ) -> None:
        queues = sorted({r.queue for r in rows})
        create = Span(
            "db.create_execution",
            trace_id,
            new_span_id(),
            parent.span_id if parent else None,
            self.start,
            PRODUCER_KIND,
            None,
            {
                **MESSAGING,
                **DATABASE,
                "db.operation.name": "INSERT",
                "messaging.operation.type": "create",
                "messaging.destination.name": queues[0] if len(queues) == 1 else "",
                "queue": ",".join(queues),
                "execution_type": rows[0].type,
                "parent_id": rows[0].parent_id or "",
                "messaging.batch.message_count": len(rows),
            },
            sampled=sampled,
        )
        if len(rows) == 1:
            create.attributes["messaging.message.id"] = rows[0].id
        carrier = build_carrier(
            SpanContext(
                trace_id,
                create.span_id,
                sampled,
                parent.tracestate if parent else "",
                parent.baggage if parent else (),
            )
        )
        self.obs.inject(create, carrier)
        encoded = encode(carrier)
        for row in rows:
            row.trace_id, row.span_id, row.trace_context = trace_id, new_span_id(), encoded
        self.spans.append(create)

    def done(self, end_ns: int | None = None) -> None:
        """The insert committed: emit the create spans of kept traces, and the metrics."""
        end = end_ns or time.time_ns()
        if self.obs.metering and self.rows:
            _created_metrics(self.obs, self.rows, self.start, end)
        for span in self.spans:
            span.end_ns, span.status = end, OK
            if span.sampled:
                self.obs.emit_span(span)
            elif self.buffer is not None:
                self.buffer.append(span)


def _own_traces(rows: list[NewExecution]) -> None:
    """Ids for rows that each start their own trace (see :func:`_own_trace`), with tracing
    off: the random part of every id comes from one draw for the batch."""
    drawn, head, at = random_hex(40 * len(rows)), trace_id_head(), 0
    for row in rows:
        row.trace_id = trace_id = head + drawn[at : at + 24]
        if not row.id:  # kept when an insert is retried with the same rows
            row.id = execution_id_of(trace_id)
        span_id = drawn[at + 24 : at + 40]
        row.span_id = span_id if span_id != ZERO_SPAN else ONE_SPAN
        at += 40


def _join_trace(rows: list[NewExecution], trace_id: str) -> None:
    """Ids for rows that join ``trace_id`` (a workflow's children), with tracing off."""
    drawn, at = random_hex(48 * len(rows)), 0
    for row in rows:
        row.trace_id = trace_id
        if not row.id:
            row.id = execution_id_of(drawn[at : at + 32])
        span_id = drawn[at + 32 : at + 48]
        row.span_id = span_id if span_id != ZERO_SPAN else ONE_SPAN
        at += 48


def _own_trace(row: NewExecution) -> str:
    """A new trace for a row that starts one; the row's id becomes the trace id.

    The index on ``trace_id`` leaves out such rows (their id finds them), so an execution that
    starts its own trace, the common case, adds no index entry on insert, claim or report.
    """
    trace_id = new_trace_id()
    if not row.id:  # kept when an insert is retried with the same rows
        row.id = execution_id_of(trace_id)
    return trace_id


def _created_metrics(obs: Observability, rows: list[NewExecution], start: int, end: int) -> None:
    now = time.time_ns()
    obs.metric(
        MetricPoint(
            "rhythm.db.query.duration",
            HISTOGRAM,
            _seconds(start, end),
            "s",
            {"operation": "create"},
            now,
        )
    )
    groups = Counter((r.queue, r.type, r.parent_id is not None) for r in rows)
    for (queue, kind, has_parent), n in groups.items():
        obs.metric(
            MetricPoint(
                "rhythm.executions.created",
                COUNTER,
                n,
                "{execution}",
                {"queue": queue, "execution_type": kind, "has_parent": has_parent},
                now,
            )
        )


def _ambient_parent(obs: Observability) -> SpanContext | None:
    """The application's own current span, as plugins see it (a web request, say)."""
    carrier: dict[str, str] = {}
    obs.inject(None, carrier)
    if "traceparent" in carrier:
        with contextlib.suppress(CarrierError):
            return read_carrier(carrier)
    return obs.extract(carrier) if carrier else None
