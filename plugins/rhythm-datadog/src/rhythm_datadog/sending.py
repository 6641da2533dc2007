"""One thread that turns the core's finished spans and metric points into ddtrace spans and
DogStatsD calls, off the worker's event loop.

ddtrace costs about 130 µs of CPU per span here and the DogStatsD client several µs per call;
on the event loop that time delays every claim and report. Queued, it runs while the loop
waits on PostgreSQL. Spans of one trace that arrive together are started together and then
finished, so ddtrace writes them as one trace chunk instead of one chunk per span.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rhythm_core.batching import BatchQueue, let_others_run
from rhythm_core.telemetry import MetricPoint, Span

log = logging.getLogger("rhythm_datadog")
PAUSE_EVERY = 16  # metric points between two releases of the GIL


class Sender:
    """A bounded queue of spans and metric points, drained by one daemon thread."""

    def __init__(
        self,
        start_span: Callable[[Span], Any],
        finish_span: Callable[[Any, Span], None],
        emit_metric: Callable[[MetricPoint], None],
        *,
        max_queue_size: int = 10_000,
        interval: float = 0.2,
    ) -> None:
        self._start, self._finish, self._emit = start_span, finish_span, emit_metric
        self.dropped = 0
        self._queue: BatchQueue[Span | MetricPoint] = BatchQueue(
            self._send,
            name="rhythm-datadog",
            max_size=max_queue_size,
            batch=256,
            interval=interval,
            on_full=self._full,
        )

    def _full(self, _item: object) -> None:
        self.dropped += 1
        if self.dropped == 1:
            log.warning(
                "rhythm-datadog: the send queue is full; spans and metric points are dropped "
                "(logged once)"
            )

    def put(self, item: Span | MetricPoint) -> None:
        """Called on the hot path: append and return."""
        self._queue.put(item)

    def _send(self, batch: list[Span | MetricPoint]) -> None:
        spans: dict[str, list[Span]] = {}
        for n, item in enumerate(batch, 1):
            try:
                if isinstance(item, Span):
                    spans.setdefault(item.trace_id, []).append(item)
                else:
                    self._emit(item)
            except Exception:  # a bad point loses itself, not the batch
                log.debug("rhythm-datadog: a metric point failed", exc_info=True)
            if not n % PAUSE_EVERY:
                let_others_run()
        for group in spans.values():
            # all started before any finishes: ddtrace writes the group as one chunk
            started = []
            for span in group:
                try:
                    started.append((self._start(span), span))
                except Exception:  # this span is lost; the others still go
                    log.debug("rhythm-datadog: a span failed", exc_info=True)
            for native, span in started:
                try:
                    self._finish(native, span)
                except Exception:
                    log.debug("rhythm-datadog: a span failed to finish", exc_info=True)
            let_others_run()

    def flush(self, timeout: float) -> bool:
        """Hand over what is queued now; True once it is all with ddtrace and DogStatsD."""
        return self._queue.flush(timeout)

    def shutdown(self, timeout: float) -> None:
        left = self._queue.shutdown(timeout)
        if left:
            log.warning(
                "rhythm-datadog: %d spans and metric points were still queued when "
                "the worker stopped; dropped",
                len(left),
            )
