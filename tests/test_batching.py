"""The plugins' export queue: batches, the bound, flush and what shutdown leaves."""

from __future__ import annotations

import threading

from rhythm_core.observability.batching import BatchQueue


def test_items_reach_drain_in_batches_and_flush_waits_for_them() -> None:
    seen: list[list[int]] = []
    queue: BatchQueue[int] = BatchQueue(seen.append, name="t", max_size=100, batch=8,
                                        interval=60, on_full=lambda _: None)
    for n in range(20):
        queue.put(n)
    assert queue.flush(5)  # not waiting for the 60 s tick
    assert [n for batch in seen for n in batch] == list(range(20))
    assert max(len(batch) for batch in seen) <= 8
    assert queue.idle and queue.shutdown(1) == []


def test_a_full_queue_refuses_and_shutdown_returns_what_is_left() -> None:
    release = threading.Event()
    refused: list[int] = []
    queue: BatchQueue[int] = BatchQueue(lambda _batch: release.wait(5), name="t", max_size=4,
                                        batch=1, interval=60, on_full=refused.append)
    queue.put(0)  # taken by the thread, which then blocks in drain
    assert not queue.flush(0.2)  # the drain is stuck: flush gives up at its timeout
    for n in range(1, 8):
        queue.put(n)
    assert refused == [5, 6, 7] and queue.queued == 4
    left = queue.shutdown(0.2)  # the thread is still stuck: the queued items come back
    assert left == [1, 2, 3, 4]
    release.set()


def test_telemetry_queue_groups_spans_by_trace_and_isolates_failures() -> None:
    from rhythm_core.observability.batching import TelemetryQueue
    from rhythm_core.observability.telemetry import COUNTER, MetricPoint, Span

    traces: list[tuple[str, list[str]]] = []
    points: list[float] = []
    after: list[int] = []

    def send_trace(trace_id: str, spans: list[Span]) -> None:
        if trace_id == "b" * 32:
            raise RuntimeError("this trace's backend call fails")
        traces.append((trace_id, [s.name for s in spans]))

    def send_point(point: MetricPoint) -> None:
        if point.value < 0:
            raise ValueError("a bad point")
        points.append(point.value)

    queue = TelemetryQueue("rhythm-test", send_trace, send_point,
                           after_batch=lambda: after.append(1), interval=60)
    for trace, name in (("a", "one"), ("b", "two"), ("a", "three"), ("c", "four")):
        queue.put(Span(name, trace * 32, "1" * 16, None, 0))
    for value in (1.0, -1.0, 2.0):
        queue.put(MetricPoint("m", COUNTER, value, "1", {}, 0))
    assert queue.flush(5)
    assert traces == [("a" * 32, ["one", "three"]), ("c" * 32, ["four"])]
    assert points == [1.0, 2.0]  # the bad point lost itself alone
    assert after  # called after each batch
    queue.shutdown(1)
    assert queue.dropped == 0
