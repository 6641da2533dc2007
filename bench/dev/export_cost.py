"""What each provider's send thread spends on one traced execution, without a worker: the
four spans a no-op task's execution ends with, turned into what the plugin sends, CPU per
trace in this process (every thread counted, native ones too), best of ``--repeat``.

    python -m bench.dev.export_cost [--traces 3000] [--repeat 5]

A worker's figure moves by tens of microseconds between runs on a shared machine; this one
moves by a few, so it is what a change to a plugin's send path is judged by. Each provider
is measured only if its plugin is installed:

- otel: the plugin's own OTLP encoding of the spans (``encoding.export_request``);
- xray: the plugin's segment documents and their datagrams (``Documents``), not sent;
- datadog: ``send_trace`` (ddtrace's spans, started and finished with the core's ids and
  times) and ddtrace's writer encoding them, flushed to a port where nothing listens.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from rhythm_core.observability import CLIENT, CONSUMER, INTERNAL, Span
from rhythm_core.observability.manager import GROUP, from_block
from rhythm_core.testing import new_span_id, new_trace_id

from ..common import machine
from .activation_cost import NOWHERE


def execution_spans() -> list[Span]:
    """A no-op task's spans as the worker ends them: claim, invoke, report, execution."""
    trace_id, execution = new_trace_id(), new_span_id()
    now = time.time_ns()
    common = {"rhythm.execution_id": "6b14ecb9-23fd-0ca3-4230-731f51de7b4e",
              "rhythm.execution_type": "task", "rhythm.function_name": "bench.noop_tasks.noop",
              "queue_name": "bench", "rhythm.attempt": 1, "messaging.system": "rhythm",
              "messaging.destination.name": "bench",
              "messaging.message.id": "6b14ecb9-23fd-0ca3-4230-731f51de7b4e"}
    database = {"db.system.name": "postgresql", "db.operation.name": "UPDATE"}

    def child(name: str, kind: str, offset: int, extra: dict[str, Any]) -> Span:
        return Span(name, trace_id, new_span_id(), execution, now + offset, kind,
                    now + offset + 1_000_000, {**common, **extra})

    return [
        child("db.claim_execution", CLIENT, 0, {**database, "worker_id": "w-1",
                                                "messaging.operation.type": "receive"}),
        child("function.invoke", INTERNAL, 2_000_000, {"messaging.operation.type": "process"}),
        child("db.report_result", CLIENT, 4_000_000, {**database, "status": "completed",
                                                      "result_size": 4}),
        Span(f"task.{common['rhythm.function_name']}", trace_id, execution, new_span_id(),
             now - 1_000_000, CONSUMER, now + 6_000_000,
             {**common, "status": "completed", "worker_id": "w-1"}),
    ]


Send = Callable[[list[Span]], object]


def otel() -> tuple[Send, Callable[[], object] | None]:
    from rhythm_otel.encoding import AttributeCache, export_request, resource_message, scope_message

    resource, scope = resource_message({"service.name": "bench"}), scope_message("rhythm", "0")
    cache = AttributeCache()
    return lambda spans: export_request(resource, scope, spans, cache), None  # no flush


def xray() -> tuple[Send, Callable[[], object] | None]:
    from rhythm_xray.segments import Documents

    documents = Documents("bench", {})

    def send(spans: list[Span]) -> None:
        for document in documents.documents(spans[0].trace_id, spans):
            for _ in documents.datagrams(document):
                pass

    return send, None  # no flush


def datadog() -> tuple[Send, Callable[[], object] | None]:
    logging.getLogger("ddtrace").setLevel(logging.CRITICAL)  # its "failed to send" lines
    from_block({"provider": "datadog", "metrics": {"enabled": False},
                "traces": {"enabled": True, "endpoint": NOWHERE}})
    import rhythm_datadog
    from ddtrace.trace import tracer

    backend = rhythm_datadog.plugin.backend
    assert backend is not None
    # the writer encodes what it was given when it flushes
    return lambda spans: backend.send_trace(spans[0].trace_id, spans), tracer.flush


PROVIDERS = {"otel": otel, "xray": xray, "datadog": datadog}


def per_trace(send: Send, flush: Callable[[], object] | None, traces: int) -> float:
    batches = [execution_spans() for _ in range(traces)]
    began = time.process_time()
    for spans in batches:
        send(spans)
    if flush is not None:
        flush()
    return (time.process_time() - began) / traces * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; {args.traces:,} traces of 4 spans, best of {args.repeat}\n")
    print("| provider | CPU µs per traced execution | per span |")
    print("|---|---:|---:|")
    installed = {ep.name for ep in entry_points(group=GROUP)}
    for name, make in PROVIDERS.items():
        if name not in installed:
            print(f"| {name} | not installed | |")
            continue
        send, flush = make()
        best = min(per_trace(send, flush, args.traces) for _ in range(args.repeat))
        print(f"| {name} | {best:.1f} | {best / 4:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
