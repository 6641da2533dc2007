"""Who decides what is sent: failed work is always kept (sample rate 0, errors sampled); an
application segment's own decision, carried in ``X-Amzn-Trace-Id``, holds for the work it
enqueues; and the header's forms, good and malformed."""

from __future__ import annotations

from typing import Any

import pytest
from rhythm_xray.propagation import HEADER, header, read

import rhythm_core
from rhythm_core import ExecutionFailed, testing
from rhythm_core.testing import new_span_id, new_trace_id, scenario
from rhythm_core.testing.failover import wait_until

from .xray import Daemon, Reader, xray_id


def test_a_failure_is_kept_when_nothing_else_is(daemon: Daemon, reader: Reader,
                                                rhythm_worker: Any, rhythm_db: Any) -> None:
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "xray", "traces": {"enabled": True, "sample_rate": 0.0,
                                       "sample_errors": True, "endpoint": daemon.address}})
    fine = scenario.noop.queue_many([()] * 5)
    failing = scenario.flaky_always.queue(7)
    for execution_id in fine:
        rhythm_core.wait(execution_id, timeout=30)
    with pytest.raises(ExecutionFailed):
        rhythm_core.wait(failing, timeout=30)
    trace_id = rhythm_core.get_execution(failing).trace_id
    name = f"task.{scenario.flaky_always.name}"
    spans = wait_until(lambda: [s for s in reader.spans(trace_id) if s.name == name],
                       "the failed execution's segment never arrived")
    (span,) = spans
    assert span.error and span.attributes["rhythm.sampling.kept_for_error"] is True
    document = next(d for d in reader.moto.documents(trace_id) if d["id"] == span.span_id)
    assert document["annotations"]["rhythm_kept_for_error"] is True
    assert document["fault"] is True
    assert document["cause"]["exceptions"][0]["type"] == "ValueError"
    wait_until(daemon.settled, "the daemon stand-in did not forward everything")
    for execution_id in fine:  # not sampled: nothing of theirs was sent
        assert reader.spans(rhythm_core.get_execution(execution_id).trace_id) == []


def test_an_unsampled_application_segment_is_not_overruled(
    daemon: Daemon, reader: Reader, rhythm_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_xray_sdk.core import xray_recorder

    monkeypatch.setenv("AWS_XRAY_NOOP_ID", "False")  # unsampled segments get real ids
    # the worker's observability is this process's: it also serves the enqueueing below
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "xray", "traces": {"enabled": True, "sample_rate": 1.0,
                                       "endpoint": daemon.address}})
    xray_recorder.configure(daemon_address=daemon.address, sampling=False)
    web = xray_recorder.begin_segment("web", sampling=0)  # the app's rules said no
    try:
        skipped = scenario.noop.queue()
    finally:
        xray_recorder.end_segment()
    kept_web = xray_recorder.begin_segment("web")
    try:
        kept = scenario.noop.queue()
    finally:
        xray_recorder.end_segment()
    rhythm_core.wait(skipped, timeout=30)
    rhythm_core.wait(kept, timeout=30)
    skipped_row = rhythm_core.get_execution(skipped)
    assert xray_id(skipped_row.trace_id) == web.trace_id  # same trace, not sampled
    kept_trace = rhythm_core.get_execution(kept).trace_id
    assert xray_id(kept_trace) == kept_web.trace_id
    wait_until(lambda: any(s.name == f"task.{scenario.noop.name}"
                           for s in reader.spans(kept_trace)), "the sampled one never arrived")
    wait_until(daemon.settled, "the daemon stand-in did not forward everything")
    assert reader.spans(skipped_row.trace_id) == []


def test_header_forms() -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    written = header(trace_id, span_id, True)
    assert written == f"Root={xray_id(trace_id)};Parent={span_id};Sampled=1"
    context = read({HEADER: written}, 0.0)
    assert context is not None
    assert (context.trace_id, context.span_id, context.sampled) == (trace_id, span_id, True)
    unsampled = read({HEADER.lower(): header(trace_id, span_id, False)}, 1.0)
    assert unsampled is not None and unsampled.sampled is False
    # the decision left downstream ("?") is the core's sample rate
    undecided = f"Root={xray_id(trace_id)};Parent={span_id};Sampled=?"
    assert read({HEADER: undecided}, 1.0).sampled is True  # type: ignore[union-attr]
    assert read({HEADER: undecided}, 0.0).sampled is False  # type: ignore[union-attr]
    # what cannot name a parent starts a new trace: None, never an exception
    for bad in ("", "Root=1-xyz", f"Root={xray_id(trace_id)}", "Parent=" + span_id,
                f"Root=2-{trace_id[:8]}-{trace_id[8:]};Parent={span_id}",
                f"Root={xray_id(trace_id)};Parent=0000000000000000",
                f"Root=1-00000000-000000000000000000000000;Parent={span_id}",
                "Root;Parent;Sampled", "\x00" * 100):
        assert read({HEADER: bad}, 1.0) is None, bad


def test_a_malformed_application_context_starts_a_new_trace_and_the_work_runs(
    daemon: Daemon, reader: Reader, rhythm_worker: Any
) -> None:
    """A request arrived with a broken ``X-Amzn-Trace-Id`` and the application's X-Ray
    middleware opened its segment with those ids anyway: the execution gets a trace of its
    own, and runs."""
    from aws_xray_sdk.core import xray_recorder

    rhythm_worker(scenario.QUEUE, observability={
        "provider": "xray", "traces": {"enabled": True, "sample_rate": 1.0,
                                       "endpoint": daemon.address}})
    assert testing.active().extract({HEADER: "Root=1-nothex;Parent=zz"}) is None
    xray_recorder.begin_segment("web", traceid="1-nothex-zz", parent_id="zz")
    try:
        execution_id = scenario.noop.queue()
    finally:
        xray_recorder.clear_trace_entities()  # the broken segment itself is not sent
    assert rhythm_core.wait(execution_id, timeout=30) is None
    trace_id = rhythm_core.get_execution(execution_id).trace_id
    spans = wait_until(lambda: reader.spans(trace_id), "the new trace never arrived")
    execution = next(s for s in spans if s.name == f"task.{scenario.noop.name}")
    creator = next(s for s in spans if s.span_id == execution.parent_span_id)
    assert creator.name == "db.create_execution" and creator.parent_span_id is None
