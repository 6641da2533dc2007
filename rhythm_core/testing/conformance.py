"""The conformance suite for observability plugins.

A plugin author subclasses :class:`PluginConformance` in their test suite and provides two
fixtures:

- ``conformance_plugin``: the plugin under test: a provider name (loaded through its entry
  point, as users will) or a plugin object.
- ``conformance_reader``: an object with ``spans(trace_id)`` and ``metrics()`` reading back what
  the plugin's backend *received* (a test agent, a collector, a file), as
  :class:`ReceivedSpan` and :class:`ReceivedMetric`. Return what has arrived so far; the
  suite polls.

Optionally ``conformance_options`` (extra observability block entries, e.g. ``options``),
the class attribute ``timestamp_tolerance_ns`` (for backends that keep microseconds), and,
for a plugin that implements ``rhythm_span_activate``, ``conformance_current``: a function
that returns what the backend's own context holds as current here, as ``(trace_id, span_id,
sampled)`` in the core's hex, or None (the cases for that hook are skipped without it).

Each test runs real executions through a worker against a real database (the fixtures of
``rhythm_core.testing.pytest_plugin``), with a :class:`RecordingPlugin` beside the plugin
under test as the record of what the core emitted, and compares the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pytest

import rhythm_core
from rhythm_core import ExecutionFailed, hookimpl, task, workflow
from rhythm_core.observability.catalogue import BY_NAME
from rhythm_core.observability.telemetry import Span
from rhythm_core.testing.recording import RecordingPlugin

QUEUE = "rhythm-conformance"


@dataclass(slots=True)
class ReceivedSpan:
    """A span as a backend received it, in the core's terms."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    error: bool
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ReceivedMetric:
    """A metric as a backend received it: its name and kind (counter, histogram, gauge)."""

    name: str
    kind: str


class Reader(Protocol):
    def spans(self, trace_id: str) -> list[ReceivedSpan]: ...

    def metrics(self) -> list[ReceivedMetric]: ...


@task(queue=QUEUE, retries=0, name="rhythm.conformance.ok")
async def conformance_ok(x: int) -> int:
    with rhythm_core.trace.span("conformance.custom"):
        pass
    return x + 1


class _Opaque:
    def __str__(self) -> str:
        raise RuntimeError("no text")


# values an application may give a custom span that no backend carries as they are
HOSTILE = {
    "nan": float("nan"),
    "infinity": float("inf"),
    "huge": 2**70,
    "object": _Opaque(),
    "text": 'quote" backslash\\ newline\n nul\x00 surrogate\ud800 \u2028',
}


@task(queue=QUEUE, retries=0, name="rhythm.conformance.hostile")
async def conformance_hostile() -> None:
    with rhythm_core.trace.span("conformance.hostile\ud800", **HOSTILE) as span:
        if span is not None:
            # a key that is not a string, set in the block (untyped application code does)
            cast(dict[Any, Any], span.attributes)[1] = float("-inf")


@task(queue=QUEUE, retries=0, name="rhythm.conformance.fails")
def conformance_fails() -> None:
    raise ValueError("conformance failure")


@workflow(queue=QUEUE, name="rhythm.conformance.workflow")
async def conformance_workflow(x: int) -> int:
    first = await conformance_ok.run(x)
    return await conformance_ok.run(first)


# set by the suite from the plugin author's ``conformance_current`` fixture: the tasks below
# (run by an in-process worker) read the backend's current span with it
_read_current: Callable[[], tuple[str, str, bool] | None] | None = None


def _current_ids() -> list[Any] | None:
    assert _read_current is not None
    found = _read_current()
    return None if found is None else list(found)


@task(queue=QUEUE, retries=0, name="rhythm.conformance.current_sync")
def conformance_current_sync() -> list[Any] | None:
    return _current_ids()


@task(queue=QUEUE, retries=0, name="rhythm.conformance.current_async")
async def conformance_current_async() -> list[Any] | None:
    return _current_ids()


class _Raising:
    name = "conformance-raising"

    @hookimpl
    def rhythm_span_start(self, span: Span) -> None:
        raise RuntimeError("raising on purpose")

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        raise RuntimeError("raising on purpose")

    @hookimpl
    def rhythm_metric_emit(self, point: Any) -> None:
        raise RuntimeError("raising on purpose")


def _poll(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


class PluginConformance:
    timestamp_tolerance_ns = 0
    receive_timeout = 15.0

    @pytest.fixture
    def conformance_options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def conformance_current(self) -> Callable[[], tuple[str, str, bool] | None] | None:
        return None

    @pytest.fixture
    def current(
        self, conformance_current: Callable[[], tuple[str, str, bool] | None] | None
    ) -> Iterator[Callable[[], tuple[str, str, bool] | None]]:
        global _read_current
        if conformance_current is None:
            pytest.skip("no conformance_current fixture: rhythm_span_activate is not checked")
        _read_current = conformance_current
        yield conformance_current
        _read_current = None

    @pytest.fixture
    def run(
        self,
        conformance_plugin: Any,
        conformance_options: dict[str, Any],
        rhythm_worker: Callable[..., Any],
        rhythm_db: Any,
    ) -> Iterator[Any]:
        """Start a worker (and the enqueueing side) with the plugin under test and a recorder."""
        recorder = RecordingPlugin()

        def start(*extra: Any, sample_rate: float = 1.0) -> tuple[Any, RecordingPlugin]:
            plugins = [recorder, *extra]
            block: dict[str, Any] = {
                "traces": {"enabled": True, "sample_rate": 1.0},
                "metrics": {"enabled": True, "interval": 0.5},
                "plugins": plugins,
                **conformance_options,
            }
            block["traces"] = {**block["traces"], "sample_rate": sample_rate}
            if isinstance(conformance_plugin, str):
                block["provider"] = conformance_plugin
            else:
                plugins.append(conformance_plugin)
            worker = rhythm_worker(QUEUE, observability=block)
            return worker, recorder

        yield start

    def _trace_of(self, rhythm_db: Any, execution_id: str) -> str:
        row = rhythm_db.execute(
            "SELECT trace_id FROM executions WHERE id = %s", (execution_id,)
        ).fetchone()
        return str(row[0])

    def _received(self, reader: Reader, trace_id: str, expected: int) -> list[ReceivedSpan]:
        received: list[ReceivedSpan] = _poll(
            lambda: reader.spans(trace_id), lambda got: len(got) >= expected, self.receive_timeout
        )
        return received

    def test_same_ids_as_the_core(
        self, run: Any, conformance_reader: Reader, rhythm_db: Any
    ) -> None:
        run()
        execution_id = conformance_workflow.queue(1)
        assert rhythm_core.wait(execution_id, timeout=30) == 3
        trace_id = self._trace_of(rhythm_db, execution_id)
        rows = rhythm_db.execute(
            "SELECT span_id, trace_id FROM executions WHERE trace_id = %s", (trace_id,)
        ).fetchall()
        assert len(rows) == 3
        expected = {(row_trace, span_id) for span_id, row_trace in rows}
        received = _poll(
            lambda: {(s.trace_id, s.span_id) for s in conformance_reader.spans(trace_id)},
            lambda got: expected <= got,
            self.receive_timeout,
        )
        assert expected <= received, "an execution span is missing, or has other ids"

    def test_parent_links(self, run: Any, conformance_reader: Reader, rhythm_db: Any) -> None:
        _, recorder = run()
        execution_id = conformance_workflow.queue(5)
        rhythm_core.wait(execution_id, timeout=30)
        trace_id = self._trace_of(rhythm_db, execution_id)
        emitted = _poll(lambda: recorder.in_trace(trace_id), lambda s: len(s) >= 10, 10)
        received = self._received(conformance_reader, trace_id, len(emitted))
        by_id = {s.span_id: s for s in received}
        for span in emitted:
            got = by_id.get(span.span_id)
            assert got is not None, f"{span.name} {span.span_id} was not received"
            assert got.parent_span_id == span.parent_span_id, span.name
            assert got.trace_id == span.trace_id, span.name

    def test_timestamps_are_the_cores(
        self, run: Any, conformance_reader: Reader, rhythm_db: Any
    ) -> None:
        _, recorder = run()
        execution_id = conformance_ok.queue(1)
        rhythm_core.wait(execution_id, timeout=30)
        trace_id = self._trace_of(rhythm_db, execution_id)
        emitted = _poll(lambda: recorder.in_trace(trace_id), lambda s: len(s) >= 6, 10)
        received = {
            s.span_id: s for s in self._received(conformance_reader, trace_id, len(emitted))
        }
        tolerance = self.timestamp_tolerance_ns
        for span in emitted:
            got = received[span.span_id]
            assert abs(got.start_ns - span.start_ns) <= tolerance, span.name
            assert span.end_ns is not None
            assert abs(got.end_ns - span.end_ns) <= tolerance, span.name

    def test_error_status(self, run: Any, conformance_reader: Reader, rhythm_db: Any) -> None:
        run()
        execution_id = conformance_fails.queue()
        with pytest.raises(ExecutionFailed):
            rhythm_core.wait(execution_id, timeout=30)
        trace_id = self._trace_of(rhythm_db, execution_id)
        received = _poll(
            lambda: conformance_reader.spans(trace_id),
            lambda got: (
                any(s.name == "function.invoke" for s in got)
                and any(s.name.startswith("task.") for s in got)
            ),
            self.receive_timeout,
        )
        errors = {s.name for s in received if s.error}
        assert "function.invoke" in errors
        assert f"task.{conformance_fails.name}" in errors
        assert not any(s.error for s in received if s.name == "db.claim_execution")

    def test_metric_kinds(self, run: Any, conformance_reader: Reader) -> None:
        worker, recorder = run()
        rhythm_core.wait(conformance_ok.queue(1), timeout=30)
        wanted = {
            "rhythm.executions.claimed",
            "rhythm.executions.completed",
            "rhythm.execution.duration",
            "rhythm.function.execution.duration",
        }
        recorder.wait_for(lambda r: wanted <= {p.name for p in r.points})
        emitted = {p.name: p.kind for p in recorder.points if p.name in BY_NAME}
        assert wanted <= set(emitted)
        worker.stop()  # exporters flush on shutdown
        received = _poll(
            lambda: {m.name: m.kind for m in conformance_reader.metrics()},
            lambda got: wanted <= set(got),
            self.receive_timeout,
        )
        for name in wanted:
            assert received.get(name) == emitted[name], name

    def test_flush_on_shutdown(self, run: Any, conformance_reader: Reader, rhythm_db: Any) -> None:
        worker, recorder = run()
        ids = conformance_ok.queue_many([(i,) for i in range(20)])
        for execution_id in ids:
            rhythm_core.wait(execution_id, timeout=30)
        worker.stop()
        _poll(lambda: recorder.shutdowns, bool, 15)
        traces = {self._trace_of(rhythm_db, i) for i in ids}
        for trace_id in traces:
            emitted = recorder.in_trace(trace_id)
            received = self._received(conformance_reader, trace_id, len(emitted))
            assert {s.span_id for s in emitted} <= {s.span_id for s in received}

    def test_hostile_values_in_a_custom_span(
        self, run: Any, conformance_reader: Reader, rhythm_db: Any
    ) -> None:
        """A custom span holding values no backend carries as they are arrives, with the
        rest of its trace."""
        _, recorder = run()
        execution_id = conformance_hostile.queue()
        rhythm_core.wait(execution_id, timeout=30)
        trace_id = self._trace_of(rhythm_db, execution_id)
        emitted = _poll(lambda: recorder.in_trace(trace_id), lambda s: len(s) >= 5, 10)
        (hostile,) = [s for s in emitted if s.name.startswith("conformance.hostile")]
        received = {
            s.span_id: s for s in self._received(conformance_reader, trace_id, len(emitted))
        }
        assert {s.span_id for s in emitted} <= set(received), "a span of the trace is missing"
        got = received[hostile.span_id]
        assert got.parent_span_id == hostile.parent_span_id
        assert got.name.startswith("conformance.hostile")

    def test_isolation_of_exceptions(
        self, run: Any, conformance_reader: Reader, rhythm_db: Any
    ) -> None:
        run(_Raising())
        execution_id = conformance_workflow.queue(10)
        assert rhythm_core.wait(execution_id, timeout=30) == 12
        trace_id = self._trace_of(rhythm_db, execution_id)
        name = f"workflow.{conformance_workflow.name}"

        def has_workflow_span(got: list[ReceivedSpan]) -> bool:
            return any(s.name == name for s in got)

        received = _poll(
            lambda: conformance_reader.spans(trace_id), has_workflow_span, self.receive_timeout
        )
        assert has_workflow_span(received)

    def test_span_activate_makes_the_attempt_current(
        self, run: Any, current: Callable[[], Any], rhythm_db: Any
    ) -> None:
        worker, recorder = run()
        for function in (conformance_current_sync, conformance_current_async):
            execution_id = function.queue()
            seen = rhythm_core.wait(execution_id, timeout=30)
            invoke = recorder.wait_for(
                lambda r, execution_id=execution_id: [
                    s
                    for s in r.named("function.invoke")
                    if s.attributes.get("rhythm.execution_id") == execution_id
                ]
            )
            assert invoke, "the attempt's span was not emitted"
            expected = [self._trace_of(rhythm_db, execution_id), invoke[0].span_id, True]
            assert seen == expected, f"{function.name}: the backend's current span"
        found = current()
        assert found is None or found[1] != expected[1], "the attempt's span stayed current"
        failed = {hook for (_, hook), n in worker._obs.errors.items() if n}
        assert "rhythm_span_activate" not in failed

    def test_span_activate_unsampled_keeps_the_trace(
        self, run: Any, current: Callable[[], Any], rhythm_db: Any
    ) -> None:
        run(sample_rate=0.0)
        for function in (conformance_current_sync, conformance_current_async):
            execution_id = function.queue()
            seen = rhythm_core.wait(execution_id, timeout=30)
            assert seen is not None, f"{function.name}: nothing current in an unsampled one"
            trace_id, _, sampled = seen
            assert (trace_id, sampled) == (self._trace_of(rhythm_db, execution_id), False)
