"""The application's own OpenTelemetry instrumentation inside tasks and workflows nests under
the execution's spans: over the wire, with the SDK's requests and psycopg instrumentations,
a loopback HTTP server that keeps what it was sent, and the OTLP receiver."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rhythm_core.testing import user_code
from rhythm_core.testing.loopback import HeaderServer

from .otlp_sink import OtlpSink, attributes
from .workers import otel_env

APP = Path(__file__).parent / "apps" / "otel_app.py"
CLIENT = 3  # SpanKind.SPAN_KIND_CLIENT in OTLP


def start(sink: OtlpSink, spawn: Any, **extra: str) -> None:
    env = otel_env(
        sink.endpoint,
        APP_OTLP_ENDPOINT=sink.endpoint,
        RHYTHM_OTEL_SCHEDULE_DELAY_MS="100",
        **extra,
    )
    user_code.serve(spawn, env, APP)


def of_execution(spans: list[Any], name: str, execution_id: str) -> list[Any]:
    return [
        s for s in spans
        if s.name == name and attributes(s.attributes).get("rhythm.execution_id") == execution_id
    ]


def test_http_and_query_spans_are_children_of_the_attempt(
    sink: OtlpSink, rhythm_worker_process: Any, rhythm_db: Any,
    rhythm_header_server: HeaderServer,
) -> None:
    start(sink, rhythm_worker_process)
    for done in user_code.call_out(rhythm_db, rhythm_header_server):

        def arrived(done: user_code.CalledOut = done) -> Any:
            spans = sink.spans_of(done.trace_id)
            invoke = of_execution(spans, "function.invoke", done.execution_id)
            http = [s for s in spans if s.kind == CLIENT and s.name == "GET"]
            query = [s for s in spans if s.name.startswith("SELECT")]
            return invoke and http and query and (invoke[0], http, query)

        invoke, http, query = sink.wait_for(arrived, message=f"{done.function}: spans missing")
        assert [s.parent_span_id for s in http + query] == [invoke.span_id] * 2, done.function
        # the server downstream was sent the execution's trace, under the client's span
        assert done.headers["traceparent"] == f"00-{done.trace_id}-{http[0].span_id.hex()}-01"


def test_an_unsampled_execution_sends_its_trace_id_not_sampled(
    sink: OtlpSink, rhythm_worker_process: Any, rhythm_db: Any,
    rhythm_header_server: HeaderServer,
) -> None:
    start(sink, rhythm_worker_process, RHYTHM_TRACES_SAMPLE_RATE="0",
          RHYTHM_TRACES_SAMPLE_ERRORS="false")
    called = user_code.call_out(rhythm_db, rhythm_header_server)
    for done in called:
        _, sent_trace, parent, flags = done.headers["traceparent"].split("-")
        assert (sent_trace, flags) == (done.trace_id, "00"), done.function
        assert parent != "0" * 16
    # nothing of those traces is recorded, by rhythm or by the application (whose processor
    # exports as each span ends, before the task returns)
    time.sleep(1.0)
    assert [s.name for done in called for s in sink.spans_of(done.trace_id)] == []


def test_workflow_body_spans_nest_under_their_pass_once(
    sink: OtlpSink, rhythm_worker_process: Any, rhythm_db: Any
) -> None:
    start(sink, rhythm_worker_process)
    execution_id, trace_id = user_code.run_workflow(rhythm_db)

    def arrived() -> Any:
        spans = sink.spans_of(trace_id)
        passes = of_execution(spans, "workflow.replay", execution_id)
        return len(passes) == 2 and any(s.name == "after-step" for s in spans)

    sink.wait_for(arrived, message="the passes and the application's spans")
    time.sleep(0.5)  # anything repeated would have arrived by now
    spans = sink.spans_of(trace_id)
    first, second = sorted(of_execution(spans, "workflow.replay", execution_id),
                           key=lambda s: s.start_time_unix_nano)
    # each opened once: on the pass that first ran it, under that pass
    assert [s.parent_span_id for s in spans if s.name == "before-step"] == [first.span_id]
    assert [s.parent_span_id for s in spans if s.name == "after-step"] == [second.span_id]
