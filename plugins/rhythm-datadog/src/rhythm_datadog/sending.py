"""One thread that turns the core's finished spans and metric points into ddtrace spans and
DogStatsD calls, off the worker's event loop.

ddtrace costs about 130 µs of CPU per span here and the DogStatsD client several µs per call;
on the event loop that time delays every claim and report. Queued, it runs while the loop
waits on PostgreSQL. Spans of one trace that arrive together are started together and then
finished, so ddtrace writes them as one trace chunk instead of one chunk per span.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rhythm_core.telemetry import MetricPoint, Span

log = logging.getLogger("rhythm_datadog")
BATCH = 256
PAUSE_EVERY = 16  # metric points between two releases of the GIL


def _let_others_run() -> None:
    """Release the GIL for a moment. A thread that does not block keeps it for the whole
    switch interval (5 ms) each time the event loop lets go of it for I/O, and the loop then
    waits that long to read PostgreSQL's answer."""
    time.sleep(0)


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
        self._queue: deque[Span | MetricPoint] = deque()
        self.max_queue_size = max_queue_size
        self._interval = interval
        self._wake = threading.Event()
        self._closing = False
        self._busy = False
        self.dropped = 0
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="rhythm-datadog", daemon=True)
        self._thread.start()

    def put(self, item: Span | MetricPoint) -> None:
        """Called on the hot path: append and return."""
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning(
                    "rhythm-datadog: the send queue is full; spans and metric points "
                    "are dropped (logged once)"
                )
            return
        queue.append(item)
        if len(queue) >= BATCH:
            self._wake.set()

    @property
    def idle(self) -> bool:
        return not self._queue and not self._busy

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            self._drain()
            if closing:
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            self._busy = True
            batch = [queue.popleft() for _ in range(min(BATCH, len(queue)))]
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
                    _let_others_run()
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
                _let_others_run()
            self._busy = False

    def flush(self, timeout: float) -> bool:
        """Send what is queued now; True once it is all handed to ddtrace and DogStatsD."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while not self.idle:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def shutdown(self, timeout: float) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
