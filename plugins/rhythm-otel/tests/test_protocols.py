"""Configuration through OpenTelemetry's own variables: OTLP/HTTP to the collector, the
resource from ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``, and a user's propagator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.sdk.trace import TracerProvider

from rhythm_core import testing
from rhythm_core.testing import scenario

from .otlp_sink import OtlpSink


def test_http_protobuf_and_the_standard_variables(
    sink: OtlpSink, rhythm_worker_process: Any, rhythm_db: Any
) -> None:
    worker = rhythm_worker_process({
        "RHYTHM_OBSERVABILITY_PROVIDER": "otel",
        "RHYTHM_TRACING_ENABLED": "true",
        "RHYTHM_TRACES_SAMPLE_RATE": "1.0",
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_METRICS_INTERVAL": "0.5",
        # nothing of rhythm's own for where or how: OpenTelemetry's variables only
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint,
        "OTEL_SERVICE_NAME": "billing",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test,team=payments",
        "RHYTHM_OTEL_SCHEDULE_DELAY_MS": "100",
    })
    ids = scenario.noop.queue_many([()] * 20)
    rows = dict(rhythm_db.execute(
        "SELECT span_id, trace_id FROM executions WHERE id = ANY(%s)", (ids,)).fetchall())

    def arrived() -> list[tuple[dict[str, Any], Any]]:
        with sink.lock:
            return [(r, s) for r, s in sink.spans if s.span_id.hex() in rows]

    got = sink.wait_for(lambda: len(arrived()) == 20 and arrived(),
                        message=f"spans did not arrive over OTLP/HTTP:\n{worker.output()}")
    for resource, span in got:
        assert span.trace_id.hex() == rows[span.span_id.hex()]
        assert resource["service.name"] == "billing"
        assert resource["deployment.environment.name"] == "test"
        assert resource["team"] == "payments"
    sink.wait_for(lambda: any(m.name == "rhythm.executions.completed" for _, m in sink.metrics),
                  message=f"no metrics over OTLP/HTTP:\n{worker.output()}")


@pytest.fixture
def b3_only() -> Iterator[None]:
    """The application chose b3 alone as its propagator (``OTEL_PROPAGATORS=b3multi``)."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(B3MultiFormat())
    yield
    propagate.set_global_textmap(before)


def test_the_users_propagator_reaches_the_carrier(b3_only: None, rhythm_db: Any) -> None:
    app = TracerProvider()  # the application's own spans; rhythm's go nowhere here
    enqueuing = testing.from_block({"provider": "otel", "traces": {"enabled": True,
                                    "sample_rate": 1.0, "endpoint": "http://127.0.0.1:9"}})
    testing.activate(enqueuing.start())
    try:
        with app.get_tracer("web").start_as_current_span("web.request") as web:
            execution_id = scenario.noop.queue()
    finally:
        enqueuing.shutdown(0.1)
        testing.activate(testing.DISABLED)
    context = web.get_span_context()
    trace_id, span_id, carrier = rhythm_db.execute(
        "SELECT trace_id, span_id, trace_context FROM executions WHERE id = %s", (execution_id,)
    ).fetchone()
    carrier = carrier if isinstance(carrier, dict) else json.loads(carrier)
    # b3 alone carried the application's span (no traceparent could be written for it); the
    # core read it back through the plugin, so the execution joined the application's trace
    assert trace_id == f"{context.trace_id:032x}"
    # and the carrier the worker reads holds the b3 headers as well as the W3C fields
    assert carrier["x-b3-traceid"] == trace_id
    # both name the span that created the execution, the parent the worker continues from
    assert carrier["x-b3-spanid"] == carrier["traceparent"].split("-")[2] != span_id
    assert carrier["x-b3-sampled"] == "1"
