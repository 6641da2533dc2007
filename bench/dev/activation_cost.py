"""What making the attempt's span current in each provider's library costs, per entry and
exit (``rhythm_span_activate``), without a database or an event loop.

    python -m bench.dev.activation_cost [--times 20000] [--repeats 7]

For each installed provider, configured with tracing on and endpoints where nothing
listens (making a span current does no I/O), times ``Observability.activated(context)``
entered and left around nothing, sampled and unsampled; the best of ``--repeats`` runs with
the garbage collector paused. This is the added work per execution on the worker's side;
``bench.otel_overhead`` and its siblings see it inside a running worker.
"""

from __future__ import annotations

import argparse
import gc
import time
from importlib.metadata import entry_points

from rhythm_core.ids import new_span_id, new_trace_id
from rhythm_core.observability.manager import GROUP, from_block
from rhythm_core.observability.telemetry import SpanContext

from ..common import machine

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there on a test machine
ENDPOINTS = {"otel": NOWHERE, "datadog": NOWHERE, "xray": "127.0.0.1:9"}


def per_activation_us(provider: str, sampled: bool, times: int, repeats: int) -> float:
    observability = from_block({
        "provider": provider,
        "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": ENDPOINTS[provider]},
        "metrics": {"enabled": False},
    })
    assert observability.activating, f"{provider} does not implement rhythm_span_activate"
    contexts = [SpanContext(new_trace_id(), new_span_id(), sampled) for _ in range(times)]
    best = float("inf")
    try:
        for _ in range(repeats):
            gc.disable()
            start = time.perf_counter()
            for context in contexts:
                with observability.activated(context):
                    pass
            best = min(best, time.perf_counter() - start)
            gc.enable()
    finally:
        observability.shutdown(1.0)
    return best / times * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    installed = {ep.name for ep in entry_points(group=GROUP)}
    print(f"machine: {machine()}\n")
    print("| provider | sampled µs per entry and exit | unsampled µs per entry and exit |")
    print("|---|---:|---:|")
    for provider in ("otel", "datadog", "xray"):
        if provider not in installed:
            continue
        sampled = per_activation_us(provider, True, args.times, args.repeats)
        unsampled = per_activation_us(provider, False, args.times, args.repeats)
        print(f"| {provider} | {sampled:.2f} | {unsampled:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
