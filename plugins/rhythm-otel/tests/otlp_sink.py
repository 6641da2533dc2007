"""An OTLP/gRPC receiver built on ``opentelemetry-proto``: what the exporter really sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rhythm_core.testing.conformance import ReceivedSpan


class OtlpSink(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    """Listens on 127.0.0.1 on a free port; keeps every span and metric it is sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[dict[str, Any], Any]] = []  # (resource attributes, span)
        self.metrics: list[tuple[dict[str, Any], Any]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.direct_endpoint = self.endpoint  # the sink's own, when a collector is in front
        self.http_endpoint = ""  # a collector's OTLP/HTTP endpoint, when there is one

    def start(self) -> OtlpSink:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None).wait(5)

    def Export(self, request: Any, context: Any) -> Any:  # gRPC names the method
        if hasattr(request, "resource_spans"):
            self._keep(self.spans, request.resource_spans, "scope_spans", "spans")
            return trace_service_pb2.ExportTraceServiceResponse()
        self._keep(self.metrics, request.resource_metrics, "scope_metrics", "metrics")
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def _keep(self, into: list[tuple[dict[str, Any], Any]], batches: Any, scopes: str,
              items: str) -> None:
        with self.lock:
            for batch in batches:
                resource = attributes(batch.resource.attributes)
                for scope in getattr(batch, scopes):
                    into.extend((resource, item) for item in getattr(scope, items))

    def spans_of(self, trace_id: str) -> list[Any]:
        raw = bytes.fromhex(trace_id)
        with self.lock:
            return [span for _, span in self.spans if span.trace_id == raw]

    def wait_for(self, what: Callable[[], Any], timeout: float = 20.0, message: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(message or "the sink never received what was expected")


def received_span(span: Any) -> ReceivedSpan:
    """An OTLP span in the core's terms, for the conformance suite and the scenario checks."""
    return ReceivedSpan(
        span.name,
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex() or None,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        span.status.code == 2,  # STATUS_CODE_ERROR
        attributes(span.attributes),
    )


def value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: value(pair.value) for pair in pairs}


if __name__ == "__main__":  # a sink in its own process (bench/otel_overhead.py): port on stdout
    import sys

    running = OtlpSink().start()
    print(running.port, flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    with running.lock:
        print(len(running.spans), flush=True)
    running.stop()
