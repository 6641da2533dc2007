"""The enqueue side: trace fields for executions about to be inserted, and what to emit once
the insert committed.

The engine has already given every row its ids (:mod:`rhythm_core.ids`). With tracing on, a
:class:`Creation` puts the rows in their parent's trace (or a new sampled-or-not root per
row), makes the ``db.create_execution`` span they hang under, and writes their carrier: W3C
fields plus what plugins inject.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from typing import TYPE_CHECKING

from ..ids import new_span_id
from ..serialization import encode
from .context import CarrierError, build_carrier, read_carrier
from .manager import Observability
from .metering import seconds
from .spans import DATABASE, MESSAGING
from .telemetry import COUNTER, HISTOGRAM, OK, PRODUCER, MetricPoint, Span, SpanContext

if TYPE_CHECKING:
    from ..store import NewExecution


class Creation:
    """The rows of one insert statement, while it runs."""

    def __init__(
        self,
        obs: Observability,
        rows: list[NewExecution],
        parent: SpanContext | None,
        buffer: list[Span] | None = None,
    ) -> None:
        self.obs, self.rows, self.buffer = obs, rows, buffer
        self.spans: list[Span] = []
        self.start = time.time_ns()
        if not rows or not obs.tracing:
            return
        if parent is None:
            parent = _ambient_parent(obs)
        if parent is not None:
            self._group(rows, parent.trace_id, parent, parent.sampled)
        else:  # each row is the root of the trace the engine gave it
            rate = obs.config.traces.sample_rate
            for row in rows:
                assert row.trace_id is not None  # the engine gave every row its ids
                self._group([row], row.trace_id, None, random.random() < rate)

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
            PRODUCER,
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


def _created_metrics(obs: Observability, rows: list[NewExecution], start: int, end: int) -> None:
    now = time.time_ns()
    obs.metric(
        MetricPoint(
            "rhythm.db.query.duration",
            HISTOGRAM,
            seconds(start, end),
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
