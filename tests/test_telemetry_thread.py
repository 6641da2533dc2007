"""The worker's telemetry thread: the engine's spans and metric points of claims and reports
are made off the event loop, in order, and none is lost when the worker stops or the thread
falls behind."""

from __future__ import annotations

import threading
import time
from typing import Any

import rhythm_core
from rhythm_core import Worker, hookimpl, instrumentation
from rhythm_core.catalogue import METRICS
from rhythm_core.instrumentation import Instruments
from rhythm_core.obsconfig import resolve
from rhythm_core.plugins import Observability
from rhythm_core.store import COMPLETED, Claimed
from rhythm_core.telemetry import GAUGE, MetricPoint, Span
from rhythm_core.testing import RecordingPlugin
from rhythm_core.tracecontext import new_execution_id, new_span_id, new_trace_id

from .apps import traced


class ThreadNoting(RecordingPlugin):
    """Records which thread handed over each engine span and metric point."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.threads: list[tuple[str, str]] = []

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        time.sleep(self.delay)
        self.threads.append((span.name, threading.current_thread().name))
        super().rhythm_span_end(span)

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        self.threads.append((point.name, threading.current_thread().name))
        super().rhythm_metric_emit(point)


def block(plugin: Any) -> dict[str, Any]:
    return {"plugins": [plugin], "traces": {"enabled": True, "sample_rate": 1.0},
            "metrics": {"enabled": True}}


def test_engine_telemetry_is_handed_over_off_the_event_loop(observe, rhythm_database_url) -> None:
    plugin = ThreadNoting()
    observe(block(RecordingPlugin()))  # the enqueueing side
    worker = Worker("traced", database_url=rhythm_database_url, poll_interval=0.2,
                    observability=block(plugin))
    thread = worker.start_in_thread()
    try:
        assert rhythm_core.wait(traced.plain.queue(3), timeout=10) == 30
        plugin.wait_for(lambda r: r.total("rhythm.executions.completed") == 1)
    finally:
        worker.stop()
        thread.join(15)
    engine = [(name, by) for name, by in plugin.threads
              if name in (f"task.{traced.plain.name}", "function.invoke", "db.report_result",
                          "rhythm.executions.completed", "rhythm.executions.claimed",
                          "rhythm.execution.duration")]
    assert {name for name, _ in engine} == {
        f"task.{traced.plain.name}", "function.invoke", "db.report_result",
        "rhythm.executions.completed", "rhythm.executions.claimed", "rhythm.execution.duration"}
    assert {by for _, by in engine} == {f"rhythm-telemetry-{worker.worker_id}"[:60]}
    # from the loop: what user code made where it runs (this async task), and the cluster
    # gauges read once per interval
    gauges = {m.name for m in METRICS if m.kind == GAUGE}
    from_loop = {n for n, by in plugin.threads if by == thread.name}
    assert {"plain.inner", "test.plain.calls"} <= from_loop
    assert from_loop - gauges == {"plain.inner", "test.plain.calls"}


def test_a_stopping_worker_hands_over_everything_queued(observe, rhythm_database_url,
                                                        db) -> None:
    plugin = ThreadNoting(delay=0.002)  # a plugin slow enough for a backlog to build
    observe(block(RecordingPlugin()))
    worker = Worker("traced", database_url=rhythm_database_url, poll_interval=0.2,
                    concurrency=50, observability=block(plugin))
    thread = worker.start_in_thread()
    ids = [traced.plain.queue(i) for i in range(200)]
    try:
        deadline = time.monotonic() + 30
        while db.execute("SELECT count(*) FROM executions WHERE status = 'completed'"
                         ).fetchone()[0] < len(ids):
            assert time.monotonic() < deadline, "the executions did not complete"
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(30)
    assert not thread.is_alive()
    ended = {s.attributes["rhythm.execution_id"] for s in plugin.spans
             if s.name == f"task.{traced.plain.name}"}
    assert ended == set(ids)
    assert plugin.total("rhythm.executions.completed") == len(ids)


def rows(n: int) -> list[Claimed]:
    return [Claimed(new_execution_id(), "task", "bench.noop", "q", "[]", "{}", 1, 0, None, 1,
                    None, new_trace_id(), new_span_id(), None, time.time_ns(), 0)
            for _ in range(n)]


class Blocking(RecordingPlugin):
    """Holds the first metric point until released, noting who emitted each."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.by: list[str] = []

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        self.by.append(threading.current_thread().name)
        self.release.wait(10)
        super().rhythm_metric_emit(point)


def test_a_full_queue_is_worked_off_by_the_loop_and_nothing_is_lost(monkeypatch) -> None:
    monkeypatch.setattr(instrumentation, "MAX_DEFERRED_BATCHES", 2)
    plugin = Blocking()
    obs = Observability(resolve(block(plugin)), explicit=True).start()
    instruments = Instruments(obs, "w-full")
    instruments.open()
    batches = [rows(3) for _ in range(6)]
    caller = threading.Thread(target=lambda: [
        instruments.claimed(batch, ["q"], time.time_ns(), time.time_ns()) for batch in batches])
    caller.start()
    # the telemetry thread holds a batch in the plugin; two more wait; the caller must do
    # the next itself, after the thread lets go (as an event loop would wait for a backlog)
    deadline = time.monotonic() + 10
    while not plugin.by or instruments._later is None or instruments._later.queued < 2:
        assert time.monotonic() < deadline, "the queue never filled"
        time.sleep(0.01)
    time.sleep(0.2)
    assert caller.is_alive()  # waiting rather than dropping
    plugin.release.set()
    caller.join(10)
    instruments.close(10)
    assert plugin.total("rhythm.executions.claimed") == 18
    assert caller.name in plugin.by
    assert any(by.startswith("rhythm-telemetry") for by in plugin.by)
    obs.shutdown(1)


def test_telemetry_that_raises_is_logged_and_the_thread_goes_on(caplog) -> None:
    plugin = RecordingPlugin()
    obs = Observability(resolve(block(plugin)), explicit=True).start()
    instruments = Instruments(obs, "w-raise")
    instruments.open()
    instruments.reported([None], 0, 1)  # type: ignore[list-item]
    good = rows(2)
    instruments.claimed(good, ["q"], time.time_ns(), time.time_ns())
    for row in good:
        instruments.begin(row)
        instruments.finish(row, None)
    instruments.reported([(row, COMPLETED) for row in good], time.time_ns(), time.time_ns())
    assert instruments.settle(10)
    instruments.close(10)
    assert "recording telemetry failed" in caplog.text
    assert plugin.total("rhythm.executions.completed") == 2
    obs.shutdown(1)
