"""The workflow scenario over the wire: an application span, a workflow of three tasks (one
retried), a worker SIGKILLed mid-task and replaced; one trace arrives at the OTLP receiver
with the ids the rows hold."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import rhythm_core
from rhythm_core import plugins
from rhythm_core.testing import scenario

from .otlp_sink import OtlpSink, attributes
from .workers import otel_env

ERROR = 2  # Status.STATUS_CODE_ERROR


def test_workflow_trace_survives_retry_and_failover(
    sink: OtlpSink, rhythm_worker_process: Any, rhythm_db: Any, tmp_path: Path
) -> None:
    marker = str(tmp_path / "release")
    # the enqueueing side (a web application): its own SDK pipeline for its own span, and
    # the otel provider for what rhythm creates
    app = TracerProvider()
    app.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sink.endpoint)))
    enqueuing = plugins.from_block(
        {"provider": "otel", "traces": {"enabled": True, "sample_rate": 1.0,
                                        "endpoint": sink.endpoint}}
    )
    plugins.activate(enqueuing.start())
    try:
        with app.get_tracer("web").start_as_current_span("web.request") as web:
            execution_id = scenario.three_tasks.queue(marker)
        web_trace = f"{web.get_span_context().trace_id:032x}"
        web_span = f"{web.get_span_context().span_id:016x}"
    finally:
        enqueuing.shutdown(5.0)
        plugins.activate(plugins.DISABLED)
        app.shutdown()

    env = otel_env(sink.endpoint, RHYTHM_OTEL_SCHEDULE_DELAY_MS="100")
    first = rhythm_worker_process(env)
    started = Path(marker + ".started")
    deadline = time.monotonic() + 30
    while not (started.exists() and started.read_text().strip()):
        assert time.monotonic() < deadline, first.output()
        time.sleep(0.05)
    # a SIGKILL loses what waits in the export queue (up to schedule_delay_ms of spans):
    # kill once the finished tasks' spans have been sent, as a real crash might find them
    sink.wait_for(
        lambda: {s.name for s in sink.spans_of(web_trace)}
        >= {f"task.{scenario.plain.name}", f"task.{scenario.flaky_once.name}"},
        message="the finished tasks' spans never arrived",
    )
    first.signal(signal.SIGKILL)
    first.wait()
    second = rhythm_worker_process(env)
    Path(marker).touch()
    assert rhythm_core.wait(execution_id, timeout=30) == [10, 200, "released"]
    second.signal(signal.SIGTERM)
    assert second.wait() == 0, second.output()

    rows = rhythm_db.execute(
        "SELECT id::text, type, function_name, trace_id, span_id, trace_context, parent_id "
        "FROM executions ORDER BY created_at"
    ).fetchall()
    assert {row[3] for row in rows} == {web_trace}  # the application's trace, in every row
    spans = sink.spans_of(web_trace)
    by_id = {span.span_id.hex(): span for span in spans}
    assert web_span in by_id and by_id[web_span].name == "web.request"

    for row_id, kind, function, _, span_id, carrier, parent_id in rows:
        named = [s for s in spans if s.name == f"{kind}.{function}"]
        assert [s.span_id.hex() for s in named] == [span_id], function  # one, the row's id
        span = named[0]
        assert attributes(span.attributes)["rhythm.execution_id"] == row_id
        creator = by_id[span.parent_span_id.hex()]
        assert creator.name == "db.create_execution"
        assert carrier["traceparent"].split("-")[2] == creator.span_id.hex()
        if parent_id is None:
            assert creator.parent_span_id.hex() == web_span  # the web request parents it
        else:
            assert by_id[creator.parent_span_id.hex()].name == "workflow.replay"

    rows_by_function = {row[2]: row for row in rows}
    flaky = rows_by_function[scenario.flaky_once.name]
    invokes = sorted(
        (s for s in spans if s.name == "function.invoke" and s.parent_span_id.hex() == flaky[4]),
        key=lambda s: attributes(s.attributes)["rhythm.attempt"],
    )
    assert [s.status.code for s in invokes] == [ERROR, 1]  # error, then ok
    (event,) = invokes[0].events
    assert event.name == "exception"
    assert attributes(event.attributes)["exception.type"] == "RuntimeError"

    held = rows_by_function[scenario.held.name]
    assert len(started.read_text().split()) == 2  # started by both workers
    held_invokes = [
        s for s in spans if s.name == "function.invoke" and s.parent_span_id.hex() == held[4]
    ]
    assert len(held_invokes) == 1  # the killed attempt sent nothing; the second continued

    for span in spans:  # every span hangs off a span of the trace, the web request is root
        assert span.span_id.hex() == web_span or span.parent_span_id.hex() in by_id, span.name
    claim = next(s for s in spans if s.name == "db.claim_execution")
    claim_attributes = attributes(claim.attributes)
    assert claim_attributes["messaging.system"] == "rhythm"
    assert claim_attributes["db.system.name"] == "postgresql"
    assert claim.kind == 3  # SPAN_KIND_CLIENT
    resources = {resource.get("service.name") for resource, _ in sink.spans}
    assert "rhythm" in resources
    assert Counter(s.name for s in spans)["workflow.replay"] >= 3
