"""The plugins' export queue: batches, the bound, flush and what shutdown leaves."""

from __future__ import annotations

import threading

from rhythm_core.batching import BatchQueue


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
