"""The hand-written span encoder against the SDK's: the same spans, built once through the SDK
tracer (the path taken through an application's provider) and encoded by the SDK's OTLP
encoder, must give equal protobuf messages."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rhythm_otel import OtelPlugin
from rhythm_otel.encoding import AttributeCache, export_request, varint
from rhythm_otel.ids import CoreIds

from rhythm_core.observability import ERROR, OK, Span, SpanContext

TRACE = "0123456789abcdef0123456789abcdef"


def _spans() -> list[Span]:
    plain = Span("task.send", TRACE, "1111111111111111", "2222222222222222", 10, "consumer",
                 20, {"rhythm.queue": "q", "attempt": 3, "ratio": 0.5, "ok": True,
                      "negative": -7, "big": 2**62, "names": ["a", "b"]}, OK)
    failed = Span("function.invoke", TRACE, "3333333333333333", "1111111111111111", 11,
                  end_ns=19, attributes={"rhythm.queue": "q", "unicode": "héllo ✓"},
                  status=ERROR, error_type="ValueError", error_message="bad input",
                  error_stack="Traceback...\n", kept_for_error=True, sampled=False)
    root = Span("workflow.main", TRACE, "4444444444444444", None, 1, "producer", 30,
                {}, ERROR, error_type="KeyError",
                links=(SpanContext("fedcba9876543210fedcba9876543210", "5555555555555555"),))
    return [plain, failed, root]


def _through_sdk(spans: list[Span]) -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(id_generator=CoreIds())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("rhythm-core")
    plugin = OtelPlugin()
    for span in spans:
        plugin._sdk_span(tracer, span)  # type: ignore[arg-type]
    request = encode_spans(memory.get_finished_spans())
    return list(request.resource_spans[0].scope_spans[0].spans)


def test_the_encoder_writes_what_the_sdk_writes() -> None:
    spans = _spans()
    cache = AttributeCache()
    for _ in range(2):  # the second time from the attribute cache
        ours = ExportTraceServiceRequest.FromString(export_request(b"", b"", spans, cache))
        got = list(ours.resource_spans[0].scope_spans[0].spans)
        assert got == _through_sdk(spans)
    assert got[1].attributes[-1].key == "rhythm.sampling.kept_for_error"
    assert got[2].links[0].trace_id.hex() == "fedcba9876543210fedcba9876543210"


def test_the_cache_keeps_true_and_one_apart() -> None:
    cache = AttributeCache()
    assert cache.fields({"x": True}) != cache.fields({"x": 1})
    assert cache.fields({"x": 1.0}) != cache.fields({"x": 1})


@pytest.mark.parametrize("number", [0, 1, 127, 128, 300, 2**63 - 1, -1, -(2**63)])
def test_varint_matches_protobuf(number: int) -> None:
    from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]

    assert varint(number) == _VarintBytes(number if number >= 0 else number + (1 << 64))
