"""The worker side: turning engine events into metric points and spans.

A worker holds :class:`Instruments` only when observability is on, and calls it at a few
points: a claim, the end of an attempt that raised, each written batch of outcomes, a
suspended workflow pass, heartbeat work. Per-row work is done once per claim batch and once
per report batch, in one loop each, rather than scattered through each execution.
"""

from __future__ import annotations

import itertools
import random
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Iterable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

from .. import store
from ..ids import new_span_id, valid_ids
from .attempt import AttemptRecord, Failure
from .context import ClaimedContext, read_claimed, unsampled_at_a_glance
from .creation import Creation
from .manager import Observability
from .metering import Meter, seconds
from .spans import attempt_spans, standalone_span
from .telemetry import Span, SpanContext

if TYPE_CHECKING:
    from ..store import Claimed, NewExecution

T = TypeVar("T")

_queue_and_type = attrgetter("queue", "type")
_FINAL = frozenset((store.COMPLETED, store.FAILED))
_KEPT_FOR_ERROR = frozenset((store.FAILED, store.RETRY))  # outcomes sample_errors keeps
SUSPENDED = "suspended"  # the outcome of a workflow pass that waits on its children


class Instruments(Meter):
    """Engine-side recording for one worker."""

    def __init__(self, observability: Observability, worker_id: str) -> None:
        super().__init__(observability)
        self.tracing = observability.tracing
        self.metering = observability.metering
        traces = observability.config.traces
        self.sample_rate = traces.sample_rate
        self.sample_errors = traces.sample_errors
        self.worker_id = worker_id
        self.worker_label = worker_id if observability.config.metrics.worker_id_label else None
        self._by_function: dict[tuple[str, str, str], list[float]] = {}
        self._by_outcome: dict[tuple[str, str, str], list[float]] = {}
        self._decode_values = self.observations(
            "rhythm.serialization.duration",
            self.labels(("direction", "deserialize"), ("format", "json")),
        )
        self._encode_values = self.observations(
            "rhythm.serialization.duration",
            self.labels(("direction", "serialize"), ("format", "json")),
        )

    def before_flush(self) -> None:
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

    def query(self, operation: str, start_ns: int, end_ns: int) -> None:
        if self.metering:
            self.observe(
                "rhythm.db.query.duration",
                seconds(start_ns, end_ns),
                self.labels(("operation", operation)),
            )

    # -- claiming --------------------------------------------------------------------------

    def claimed(self, rows: list[Claimed], queues: list[str], start_ns: int, end_ns: int) -> None:
        """A claim statement ran (``rows`` may be empty: an idle poll, which makes no span).
        Gives each row its :class:`AttemptRecord`."""
        if self.metering:
            self._claim_metrics(rows, queues, start_ns, end_ns)
        if not self.tracing:
            for row in rows:
                row.record = AttemptRecord(claim_start=start_ns, claim_end=end_ns)
            return
        rate, keep_errors = self.sample_rate, self.sample_errors
        for row in rows:
            # Most rows of a sampled-down fleet are unsampled and succeed: for those only the
            # record is made; nothing is parsed unless the attempt fails or creates something.
            carrier = row.trace_context
            drawn: float | None = None
            if carrier is None:  # enqueued with tracing off: this worker is the root
                drawn = random.random()
                lazy = drawn >= rate and valid_ids(row.trace_id, row.span_id)
            else:
                lazy = unsampled_at_a_glance(row.trace_id, row.span_id, carrier)
            if lazy:
                row.record = AttemptRecord(
                    claim_start=start_ns,
                    claim_end=end_ns,
                    trace_id=row.trace_id or "",
                    keep=keep_errors,
                    lazy=True,
                )
                continue
            # a root's decision is the draw above: one draw per row, not two
            decide = random.random if drawn is None else itertools.repeat(drawn).__next__
            context = read_claimed(row.trace_id, row.span_id, carrier, rate, decide)
            row.record = AttemptRecord(
                claim_start=start_ns,
                claim_end=end_ns,
                context=context,
                trace_id=context.trace_id,
                span_id=new_span_id(),
                sampled=context.sampled,
                keep=keep_errors and not context.sampled,
            )

    def _claim_metrics(
        self, rows: list[Claimed], queues: list[str], start_ns: int, end_ns: int
    ) -> None:
        queue_label = queues[0] if len(queues) == 1 else ",".join(queues)
        self.observe(
            "rhythm.claim_loop.duration",
            seconds(start_ns, end_ns),
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

    # -- one attempt -----------------------------------------------------------------------

    def context_of(self, row: Claimed) -> ClaimedContext:
        """The row's trace context, read now if it was left unread (an unsampled row)."""
        record = row.record
        assert record is not None
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
        return record.context

    @staticmethod
    def raised(row: Claimed, error: BaseException) -> None:
        """The function raised: its end, and the error its span shows."""
        record = row.record
        assert record is not None
        record.end = time.time_ns()
        stack = "".join(traceback.format_exception(error))
        record.error = Failure(type(error).__name__, str(error), stack)

    @staticmethod
    def failed_around(row: Claimed, error: Exception) -> None:
        """The attempt failed outside the function (unknown function, undecodable arguments,
        an unencodable result)."""
        record = row.record
        if record is not None and record.error is None:
            record.failure = Failure(type(error).__name__, str(error))

    # -- outcomes --------------------------------------------------------------------------

    def _function_values(self, row: Claimed, status: str) -> list[float]:
        """The function duration series of a function, execution type and status."""
        values = self._by_function[(row.function_name, row.type, status)] = self.observations(
            "rhythm.function.execution.duration",
            self.labels(
                ("function_name", row.function_name),
                ("execution_type", row.type),
                ("status", status),
            ),
        )
        return values

    def _outcome_values(self, row: Claimed, status: str) -> list[float]:
        """The execution duration series of a queue, final status and execution type."""
        values = self._by_outcome[(row.queue, status, row.type)] = self.observations(
            "rhythm.execution.duration",
            self.labels(("execution_type", row.type), ("queue", row.queue), ("status", status)),
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
        :data:`SUSPENDED` for a workflow pass, written by the ``suspend`` statement)."""
        metering, keep_errors = self.metering, self.sample_errors
        by_outcome, by_function = self._by_outcome, self._by_function
        decode_values, encode_values = self._decode_values, self._encode_values
        spans: list[Span] = []
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
                    status = "success" if kind == store.COMPLETED else "failed"
                    values = by_outcome.get((row.queue, status, row.type))
                    if values is None:
                        values = self._outcome_values(row, status)
                    waited = end_ns - row.created_ns  # the database's clock against ours
                    values.append(waited / 1e9 if waited > 0 else 0.0)
            context = record.context
            if context is not None and context.sampled:
                spans += attempt_spans(row, kind, final, start_ns, end_ns, self.worker_id)
            elif kind in _KEPT_FOR_ERROR and keep_errors and record.traced:
                self.context_of(row)
                spans += attempt_spans(row, kind, final, start_ns, end_ns, self.worker_id)
        if spans:
            self.obs.emit_spans(spans)
        if metering:
            self.query(operation, start_ns, end_ns)
            self.flush(due=True)

    # -- workflows ---------------------------------------------------------------------------

    def child_parent(self, row: Claimed) -> tuple[SpanContext | None, list[Span] | None]:
        """(parent, buffer) for the children a workflow pass creates: they join the pass's
        trace under its span, and wait in its buffer when kept only for an error."""
        record = row.record
        if record is None or not record.traced:
            return None, None
        context = self.context_of(row)
        parent = SpanContext(context.trace_id, record.span_id, context.sampled)
        return parent, record.buffer

    async def suspend(
        self, row: Claimed, children: list[NewExecution], write: Awaitable[None]
    ) -> None:
        """A workflow pass ends by suspending: ``write`` inserts its ``children`` (given ids
        by the engine) and suspends it. They join the pass's trace under its span."""
        record = row.record
        assert record is not None
        record.end = time.time_ns()
        parent, buffer = self.child_parent(row)
        creation = Creation(self.obs, children, parent, buffer)
        start = time.time_ns()
        await write
        creation.done()
        self.reported([(row, SUSPENDED)], start, time.time_ns(), operation="suspend")

    # -- heartbeats ------------------------------------------------------------------------

    async def maintenance(self, span_name: str, operation: str, work: Awaitable[T]) -> T:
        """Run heartbeat work (a heartbeat, a dead-worker check), time it, and give it a span
        of its own trace when it failed or found dead workers."""
        start, failure, result = time.time_ns(), None, None
        try:
            result = await work
        except Exception as exc:
            failure = exc
        end = time.time_ns()
        self.query(operation, start, end)
        dead: Any = result if isinstance(result, tuple) else None  # (worker ids, reassigned)
        found = bool(dead and (dead[0] or dead[1]))
        if self.tracing and (failure is not None or found):
            attributes: dict[str, Any] = {"worker_id": self.worker_id}
            if found:
                attributes["dead_worker_ids"] = list(dead[0] or [])
                attributes["reassigned_count"] = int(dead[1])
            self.obs.emit_span(standalone_span(span_name, start, end, attributes, failure))
        if failure is not None:
            raise failure
        return result  # type: ignore[return-value]
