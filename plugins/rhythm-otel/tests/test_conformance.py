"""The core's conformance suite, with the plugin loaded by name and read back over the wire."""

from __future__ import annotations

from typing import Any

import pytest

from rhythm_core.testing.conformance import PluginConformance, ReceivedMetric, ReceivedSpan

from .otlp_sink import OtlpSink, received_span

KINDS = {"sum": "counter", "histogram": "histogram", "gauge": "gauge"}


class SinkReader:
    def __init__(self, sink: OtlpSink) -> None:
        self.sink = sink

    def spans(self, trace_id: str) -> list[ReceivedSpan]:
        return [received_span(span) for span in self.sink.spans_of(trace_id)]

    def metrics(self) -> list[ReceivedMetric]:
        with self.sink.lock:
            return [
                ReceivedMetric(metric.name, KINDS[metric.WhichOneof("data")])
                for _, metric in self.sink.metrics
            ]


class TestOtelConformance(PluginConformance):
    @pytest.fixture
    def conformance_plugin(self) -> str:
        return "otel"  # through the rhythm.observability entry point, as users select it

    @pytest.fixture
    def conformance_options(self, sink: OtlpSink) -> dict[str, Any]:
        return {
            "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": sink.endpoint},
            "metrics": {"enabled": True, "interval": 0.5, "endpoint": sink.endpoint},
        }

    @pytest.fixture
    def conformance_reader(self, sink: OtlpSink) -> SinkReader:
        return SinkReader(sink)

    @pytest.fixture
    def conformance_current(self) -> Any:
        from opentelemetry import trace

        def read() -> tuple[str, str, bool] | None:
            found = trace.get_current_span().get_span_context()
            if not found.is_valid:
                return None
            return f"{found.trace_id:032x}", f"{found.span_id:016x}", found.trace_flags.sampled

        return read
