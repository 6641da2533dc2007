"""A bounded queue drained in batches by one daemon thread: how a backend plugin keeps its
export work off the worker's event loop.

The hot path only appends. The thread wakes every ``interval`` seconds, or as soon as a
batch is full, and hands each batch to ``drain``. Between steps of heavy work the drain
should call :func:`let_others_run`: a thread that never blocks keeps the GIL for the
interpreter's whole switch interval (5 ms) each time the event loop lets go of it for I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from .telemetry import MetricPoint, Span

T = TypeVar("T")


def let_others_run() -> None:
    """Release the GIL for a moment (``time.sleep(0)`` does)."""
    time.sleep(0)


class BatchQueue(Generic[T]):
    """Items queued by :meth:`put`, handed to ``drain`` in lists of at most ``batch``.

    ``on_full`` is called with each item refused because ``max_size`` items are waiting;
    :meth:`shutdown` returns the items still queued when its timeout ran out (and
    :attr:`in_flight` says how many were still being handled then).
    """

    def __init__(
        self,
        drain: Callable[[list[T]], None],
        *,
        name: str,
        max_size: int,
        batch: int,
        interval: float,
        on_full: Callable[[T], None],
    ) -> None:
        self._drain_batch, self._on_full = drain, on_full
        self.max_size, self._batch, self._interval = max_size, min(batch, max_size), interval
        self._queue: deque[T] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._busy = False
        self.in_flight = 0  # items of the batch being handled now
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being handled."""
        return not self._queue and not self._busy

    def put(self, item: T) -> None:
        """Called on the hot path: append and return."""
        queue = self._queue
        if len(queue) >= self.max_size:
            self._on_full(item)
            return
        queue.append(item)
        if len(queue) >= self._batch:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            queue = self._queue
            while queue:
                self._busy = True
                batch = [queue.popleft() for _ in range(min(self._batch, len(queue)))]
                self.in_flight = len(batch)
                self._drain_batch(batch)
                self.in_flight = 0
                self._busy = False
            if closing:
                return

    def flush(self, timeout: float) -> bool:
        """Handle what is queued now rather than at the next tick; True once done, False if
        ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while not self.idle:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def shutdown(self, timeout: float) -> list[T]:
        """Handle what is queued within ``timeout`` seconds; returns what was left."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        left = list(self._queue)
        self._queue.clear()
        return left


class TelemetryQueue:
    """A :class:`BatchQueue` of spans and metric points, as a backend plugin sends them.

    Each batch hands ``send_point`` the metric points one by one and ``send_trace`` the spans
    of each trace together (a trace's spans that end together, such as an execution's, then
    go out as one chunk or document), then calls ``after_batch``. One failing item loses
    itself, not the batch. Items refused because the queue is full are counted in
    :attr:`dropped` and logged once; so are those left when :meth:`shutdown` runs out of time.
    """

    def __init__(
        self,
        name: str,
        send_trace: Callable[[str, list[Span]], None],
        send_point: Callable[[MetricPoint], None],
        *,
        after_batch: Callable[[], None] | None = None,
        max_size: int = 10_000,
        batch: int = 256,
        interval: float = 0.2,
        pause_every: int = 16,
        pause_between_traces: bool = True,
    ) -> None:
        self.name = name
        self._send_trace, self._send_point, self._after = send_trace, send_point, after_batch
        self._pause_every, self._pause_between_traces = pause_every, pause_between_traces
        self._log = logging.getLogger(name.replace("-", "_"))
        self.dropped = 0
        self._queue: BatchQueue[Span | MetricPoint] = BatchQueue(
            self._send,
            name=name,
            max_size=max_size,
            batch=batch,
            interval=interval,
            on_full=self._full,
        )

    def _full(self, _item: object) -> None:
        self.dropped += 1
        if self.dropped == 1:
            self._log.warning(
                "%s: the send queue is full; spans and metric points are dropped (logged once)",
                self.name,
            )

    def put(self, item: Span | MetricPoint) -> None:
        """Called on the hot path: append and return."""
        self._queue.put(item)

    def _send(self, batch: list[Span | MetricPoint]) -> None:
        traces: dict[str, list[Span]] = {}
        for n, item in enumerate(batch, 1):
            if isinstance(item, Span):
                traces.setdefault(item.trace_id, []).append(item)
                continue
            try:
                self._send_point(item)
            except Exception:
                self._log.debug("%s: a metric point failed", self.name, exc_info=True)
            if not n % self._pause_every:
                let_others_run()
        for trace_id, spans in traces.items():
            try:
                self._send_trace(trace_id, spans)
            except Exception:
                self._log.debug("%s: spans failed", self.name, exc_info=True)
            if self._pause_between_traces:
                let_others_run()
        if self._after is not None:
            try:
                self._after()
            except Exception:
                self._log.debug("%s: after a batch", self.name, exc_info=True)

    def flush(self, timeout: float) -> bool:
        """Hand over what is queued now; True once it is all handed over."""
        return self._queue.flush(timeout)

    def shutdown(self, timeout: float) -> None:
        left = self._queue.shutdown(timeout)
        if left:
            self.dropped += len(left)
            self._log.warning(
                "%s: %d spans and metric points still queued at shutdown were dropped",
                self.name,
                len(left),
            )
