"""One test per hook of ``rhythm_core.observability.hookspecs`` (the meta-test in
test_docs.py checks that each hook has one here, named ``test_<hook>...``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import rhythm_core
from rhythm_core import hookimpl, trace
from rhythm_core.ids import valid_ids
from rhythm_core.observability.catalogue import BY_NAME
from rhythm_core.observability.context import format_traceparent
from rhythm_core.observability.telemetry import Span, SpanContext
from rhythm_core.testing import RecordingPlugin, made_current

from .apps import traced, workflows


def block(*plugins: Any, **traces: Any) -> dict[str, Any]:
    return {"plugins": list(plugins), "traces": {"enabled": True, "sample_rate": 1, **traces},
            "metrics": {"enabled": True, "interval": 0.2}}


def test_rhythm_observability_configure_once_and_again_after_fork() -> None:
    code = """
import os, sys
from rhythm_core.observability.manager import Observability
from rhythm_core.observability.config import resolve
from rhythm_core.testing import RecordingPlugin
recorder = RecordingPlugin()
obs = Observability(resolve({"plugins": [recorder], "traces": {"enabled": True},
                             "service_name": "svc"}, {})).start()
assert len(recorder.configured) == 1 and recorder.configured[0].service_name == "svc"
pid = os.fork()
if pid == 0:
    os._exit(0 if len(recorder.configured) == 2 else 1)
_, status = os.waitpid(pid, 0)
print("child configured again" if os.waitstatus_to_exitcode(status) == 0 else "not again")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "child configured again", done.stderr


class NativeStoring(RecordingPlugin):
    """A recorder that keeps an object of its own in each span it starts, as a backend keeps
    its native span."""

    name = "native-storing"

    @hookimpl
    def rhythm_span_start(self, span: Span) -> None:
        span.native[self.name] = ("started", span.span_id)
        super().rhythm_span_start(span)


def test_rhythm_span_start_then_end_with_native_storage(start_worker) -> None:
    recorder = NativeStoring()
    start_worker("traced", observability=block(recorder))
    rhythm_core.wait(traced.plain.queue(1), timeout=10)
    recorder.wait_for(lambda r: r.named(f"task.{traced.plain.name}"))
    assert recorder.started and len(recorder.started) == len(recorder.spans)
    for started, ended in zip(recorder.started, recorder.spans, strict=True):
        assert started is ended  # each span's end follows its start
        assert ended.native["native-storing"] == ("started", ended.span_id)
        assert ended.end_ns is not None and ended.status in ("ok", "error")


def test_rhythm_metric_emit_follows_the_catalogue(start_worker) -> None:
    recorder = RecordingPlugin()
    start_worker("traced", observability=block(recorder))
    rhythm_core.wait(traced.plain.queue(1), timeout=10)
    import time

    time.sleep(0.6)  # one gauge interval
    emitted = {p.name for p in recorder.points}
    for point in recorder.points:
        spec = BY_NAME.get(point.name)
        if spec is not None:
            assert (point.kind, point.unit) == (spec.kind, spec.unit), point.name
            assert set(point.attributes) <= set(spec.labels), point.name
            assert "execution_id" not in point.attributes
    assert {"rhythm.workers.active", "rhythm.executions.claimed",
            "rhythm.execution.duration"} <= emitted
    assert any(p.name == "test.plain.calls" and p.attributes == {"kind": "plain"}
               for p in recorder.points)


def test_rhythm_context_inject_writes_the_carrier_and_ambient_parent(observe, db) -> None:
    ambient = format_traceparent("6b083b5f247c0ef3db2c7cdc2208eb09", "b7ad6b7169203331", True)
    recorder = RecordingPlugin(ambient=ambient)
    observe(block(recorder))
    execution_id = traced.plain.queue(1)  # no core span: the plugin's current one is used
    trace_id, carrier = db.execute(
        "SELECT trace_id, trace_context FROM executions WHERE id = %s", (execution_id,)
    ).fetchone()
    assert trace_id == "6b083b5f247c0ef3db2c7cdc2208eb09"
    (create,) = recorder.named("db.create_execution")
    assert create.parent_span_id == "b7ad6b7169203331"
    assert carrier["x-recording-span"] == create.span_id
    assert carrier["traceparent"] == format_traceparent(trace_id, create.span_id, True)


class OwnFormatPlugin:
    """Propagates only in its own header, which the core cannot read."""

    name = "own-format"

    @hookimpl
    def rhythm_context_inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        if span is None:
            carrier["x-own"] = "6b083b5f247c0ef3db2c7cdc2208eb09:00f067aa0ba902b7:0"

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        if "x-own" not in carrier:
            return None
        trace_id, span_id, sampled = carrier["x-own"].split(":")
        return SpanContext(trace_id, span_id, sampled == "1")


def test_rhythm_context_extract_reads_a_format_the_core_cannot(observe, db) -> None:
    recorder = RecordingPlugin()
    observe(block(OwnFormatPlugin(), recorder))
    execution_id = traced.plain.queue(1)
    trace_id, carrier = db.execute(
        "SELECT trace_id, trace_context FROM executions WHERE id = %s", (execution_id,)
    ).fetchone()
    assert trace_id == "6b083b5f247c0ef3db2c7cdc2208eb09"
    assert carrier["traceparent"].endswith("-00")  # the extracted context was not sampled
    assert recorder.named("db.create_execution") == []


class MalformedExtractPlugin(OwnFormatPlugin):
    """Extracts ids that are not hex: one holds the comma that separates a batch's ids."""

    name = "malformed-extract"

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        return SpanContext("6b083b5f247c0ef3,b7cdc2208eb09aa", "00f067aa0ba902b7", True)


def test_rhythm_context_extract_with_malformed_ids_is_refused_and_counted(observe, db) -> None:
    obs = observe(block(MalformedExtractPlugin(), RecordingPlugin()))
    ids = traced.plain.queue_many([(1,), (2,)])
    rows = db.execute(
        "SELECT id::text, trace_id, span_id FROM executions WHERE id = ANY(%s::uuid[])",
        (ids,),
    ).fetchall()
    assert len(rows) == 2
    for execution_id, trace_id, span_id in rows:  # each started its own, well-formed trace
        assert trace_id == execution_id.replace("-", "")
        assert valid_ids(span_id=span_id)
    assert obs.errors[("malformed-extract", "rhythm_context_extract")] == 1


def test_rhythm_observability_shutdown_on_worker_stop(start_worker) -> None:
    recorder = RecordingPlugin()
    worker = start_worker("traced", observability=block(recorder))
    with trace.span("before-stop"):
        pass
    rhythm_core.wait(traced.plain.queue(1), timeout=10)
    worker.stop()
    import time

    deadline = time.monotonic() + 10
    while not recorder.shutdowns and time.monotonic() < deadline:
        time.sleep(0.05)
    # what is left of shutdown_timeout, at least MIN_FLUSH: time to export within the stop
    from rhythm_core.worker import MIN_FLUSH

    (given,) = recorder.shutdowns
    assert MIN_FLUSH <= given <= max(worker.shutdown_timeout, MIN_FLUSH)


def test_rhythm_span_end_carries_status_and_error(start_worker) -> None:
    recorder = RecordingPlugin()
    start_worker("traced", observability=block(recorder))
    failing = traced.always_fails.queue(7)
    import pytest

    with pytest.raises(rhythm_core.ExecutionFailed):
        rhythm_core.wait(failing, timeout=10)
    recorder.wait_for(lambda r: r.named(f"task.{traced.always_fails.name}"))
    (invoke,) = recorder.named("function.invoke")
    assert invoke.status == "error" and invoke.error_type == "ValueError"
    assert invoke.error_message == "failing 7"
    assert invoke.error_stack is not None and "raise ValueError" in invoke.error_stack
    assert invoke.attributes["error.type"] == "ValueError"
    assert invoke.end_ns is not None and invoke.end_ns >= invoke.start_ns
    (claim,) = recorder.named("db.claim_execution")
    assert claim.status == "ok"


def _invoke_span(recorder: RecordingPlugin, execution_id: str) -> Span:
    found = recorder.wait_for(lambda r: [s for s in r.named("function.invoke")
                                         if s.attributes["rhythm.execution_id"] == execution_id])
    (span,) = found
    return span


def test_rhythm_span_activate_makes_the_attempt_current_where_user_code_runs(
    start_worker, db
) -> None:
    recorder = RecordingPlugin()
    start_worker("traced", observability=block(recorder))
    for function in (traced.sees_async, traced.sees_sync):
        execution_id = function.queue()
        seen = rhythm_core.wait(execution_id, timeout=10)
        (trace_id,) = db.execute("SELECT trace_id FROM executions WHERE id = %s",
                                 (execution_id,)).fetchone()
        invoke = _invoke_span(recorder, execution_id)
        assert seen["outer"] == [trace_id, invoke.span_id, True], function.name
        # a custom span is current inside its block, and the attempt's again after it
        assert seen["inner"] == [trace_id, seen["inner_span"], True], function.name
        (inner,) = [s for s in recorder.named("sees.inner") if s.span_id == seen["inner_span"]]
        assert inner.parent_span_id == invoke.span_id
        assert seen["after"] == invoke.span_id, function.name
    assert made_current() is None  # nothing leaks into the test's own context


def test_rhythm_span_activate_unsampled_keeps_the_trace_id(start_worker, db) -> None:
    recorder = RecordingPlugin()
    start_worker("traced", observability=block(recorder, sample_rate=0, sample_errors=False))
    for function in (traced.sees_async, traced.sees_sync):
        execution_id = function.queue()
        seen = rhythm_core.wait(execution_id, timeout=10)
        (trace_id,) = db.execute("SELECT trace_id FROM executions WHERE id = %s",
                                 (execution_id,)).fetchone()
        trace, span_id, sampled = seen["outer"]
        assert (trace, sampled) == (trace_id, False), function.name
        assert valid_ids(trace_id=trace, span_id=span_id)
        assert seen["inner"][0] == trace_id and seen["inner"][2] is False
    assert recorder.named("function.invoke") == []


def test_rhythm_span_activate_follows_workflow_replay(start_worker) -> None:
    recorder = RecordingPlugin()
    start_worker(["wf", "wf-tasks"], observability=block(recorder))
    execution_id = workflows.observed.queue(2)
    assert rhythm_core.wait(execution_id, timeout=20) == 12
    passes = recorder.wait_for(lambda r: len([
        s for s in r.named(f"workflow.{workflows.observed.name}")
        if s.attributes["rhythm.execution_id"] == execution_id]) == 1 and [
        s for s in r.named("workflow.replay")
        if s.attributes["rhythm.execution_id"] == execution_id])
    pass_ids = {s.span_id for s in passes}
    seen = [(point, context) for eid, point, context in workflows.SEEN if eid == execution_id]
    assert [point for point, _ in seen] == [
        "start", "start", "after-first", "start", "after-first", "end"]
    assert {context.span_id for _, context in seen} == pass_ids  # one pass each, three passes
    # each point of the body is live (sampled, under its pass) exactly once: on the pass
    # that first ran it; later passes replay it unsampled, so nothing it opens repeats
    live = [point for point, context in seen if context.sampled]
    assert live == ["start", "after-first", "end"]
    trace_ids = {context.trace_id for _, context in seen}
    assert trace_ids == {passes[0].trace_id}


class RaisingManagers:
    """Its context managers raise on the way in (odd calls) or out (even calls)."""

    name = "raising-managers"

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def rhythm_span_activate(self, context: SpanContext) -> Any:
        self.calls += 1
        fails_on_enter = self.calls % 2 == 1

        class Manager:
            def __enter__(self) -> None:
                if fails_on_enter:
                    raise RuntimeError("enter broke")

            def __exit__(self, *exc: Any) -> bool:
                raise RuntimeError("exit broke")

        return Manager()


def test_rhythm_span_activate_that_raises_fails_nothing(start_worker) -> None:
    recorder, raising = RecordingPlugin(), RaisingManagers()
    worker = start_worker("traced", observability=block(raising, recorder))
    for function in (traced.sees_async, traced.sees_sync, traced.sees_async):
        seen = rhythm_core.wait(function.queue(), timeout=10)
        assert seen["outer"][2] is True  # the other plugin still made the attempt current
    assert worker._obs.errors[("raising-managers", "rhythm_span_activate")] == raising.calls
    assert raising.calls >= 6  # attempts and custom spans


class SpansOnly:
    """A plugin without rhythm_span_activate."""

    name = "spans-only"

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        pass


def test_rhythm_span_activate_not_implemented_is_never_asked(start_worker, monkeypatch) -> None:
    from rhythm_core.observability.manager import Observability

    made: list[SpanContext] = []
    original = Observability.activated
    monkeypatch.setattr(Observability, "activated",
                        lambda self, context: made.append(context) or original(self, context))
    worker = start_worker(["traced", "wf", "wf-tasks"], observability=block(SpansOnly()))
    assert worker._obs.tracing and not worker._obs.activating
    seen = rhythm_core.wait(traced.sees_sync.queue(), timeout=10)
    assert seen["outer"] is None
    assert rhythm_core.wait(workflows.observed.queue(1), timeout=20) == 6
    assert made == []
