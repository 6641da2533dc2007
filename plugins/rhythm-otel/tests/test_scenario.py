"""The workflow scenario over the wire: an application span, a workflow of three tasks (one
retried), a worker SIGKILLed mid-task and replaced; one trace arrives at the OTLP receiver
with the ids the rows hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rhythm_core import testing
from rhythm_core.testing import failover, scenario

from .otlp_sink import OtlpSink, attributes, received_span
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
    enqueuing = testing.from_block(
        {"provider": "otel", "traces": {"enabled": True, "sample_rate": 1.0,
                                        "endpoint": sink.endpoint}}
    )
    testing.activate(enqueuing.start())
    try:
        with app.get_tracer("web").start_as_current_span("web.request") as web:
            execution_id = scenario.three_tasks.queue(marker)
        web_trace = f"{web.get_span_context().trace_id:032x}"
        web_span = f"{web.get_span_context().span_id:016x}"
    finally:
        enqueuing.shutdown(5.0)
        testing.activate(testing.DISABLED)
        app.shutdown()

    env = otel_env(sink.endpoint, RHYTHM_OTEL_SCHEDULE_DELAY_MS="100")
    failover.drive(
        rhythm_worker_process, env, marker, execution_id,
        lambda: failover.finished_work_sent(s.name for s in sink.spans_of(web_trace)),
    )
    spans = sink.spans_of(web_trace)
    received = [received_span(s) for s in spans]
    by_name = {s.span_id: s.name for s in received}
    assert by_name[web_span] == "web.request"
    rows = failover.check(rhythm_db, received, web_trace, web_span)

    # what OTLP says of the retried attempt that failed: ERROR status and an exception event
    flaky = rows[scenario.flaky_once.name]
    failed = [s for s in spans if s.name == "function.invoke" and s.parent_span_id.hex() ==
              flaky[4] and s.status.code == ERROR]
    assert len(failed) == 1
    (event,) = failed[0].events
    assert event.name == "exception"
    assert attributes(event.attributes)["exception.type"] == "RuntimeError"
    claim = next(s for s in spans if s.name == "db.claim_execution")
    claim_attributes = attributes(claim.attributes)
    assert claim_attributes["messaging.system"] == "rhythm"
    assert claim_attributes["db.system.name"] == "postgresql"
    assert claim.kind == 3  # SPAN_KIND_CLIENT
    resources = {resource.get("service.name") for resource, _ in sink.spans}
    assert "rhythm" in resources
