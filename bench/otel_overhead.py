"""What rhythm-otel costs: throughput with the otel provider exporting over OTLP/gRPC to a
receiver in another process, against observability off, alternating runs in one process, on
no-op tasks and on 1 ms tasks; and the time to export one metrics batch of the catalogue.

    python -m bench.otel_overhead [--tasks 10000] [--rounds 5] [--exports 200]

Needs ``pip install -e "plugins/rhythm-otel[test]"`` (the receiver is the tests' OTLP sink).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .common import OFF, compare_provider, machine, print_comparison
from .sinks import OtlpReceiver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--exports", type=int, default=200)
    args = parser.parse_args(argv)
    receiver = OtlpReceiver()
    endpoint = receiver.endpoint

    def otel(rate: float) -> dict[str, Any]:
        # a queue that holds a whole run: no span is dropped; every run is timed until the
        # queue is sent (flushed at once after the last completion, not at the next tick)
        return {"provider": "otel",
                "traces": {"enabled": True, "sample_rate": rate, "endpoint": endpoint},
                "metrics": {"enabled": True, "endpoint": endpoint},
                "options": {"otel": {"max_queue_size": 8 * args.tasks}}}

    blocks = {"off": OFF, "otel-default": otel(0.1), "otel-100": otel(1.0)}
    print(f"machine: {machine()}; OTLP/gRPC receiver in another process at {endpoint}")
    try:
        results = compare_provider(blocks, _spans_sent, args.tasks, args.rounds)
        series, export_ms = metrics_export_times(endpoint, args.exports)
    finally:
        received = receiver.stop()
    print_comparison(results, "otel", args.tasks, args.rounds,
                     f"each timed from the first claim until the last span is sent; spans "
                     f"received by the sink: {received} (at 100% sampling 4 a task: at least "
                     f"{4 * 2 * args.rounds * args.tasks:,})")
    export_ms.sort()
    print(f"\nOne metrics batch of the whole catalogue ({series} series) exported over "
          f"OTLP/gRPC, {len(export_ms)} times: p50 {export_ms[len(export_ms) // 2]:.2f} ms, "
          f"p99 {export_ms[int(len(export_ms) * 0.99) - 1]:.2f} ms, "
          f"max {export_ms[-1]:.2f} ms")
    return 0


def _spans_sent() -> bool:
    import rhythm_otel

    pipeline = rhythm_otel.plugin.pipeline
    return pipeline is None or pipeline.shipper is None or pipeline.shipper.flush(60)


def metrics_export_times(endpoint: str, times: int) -> tuple[int, list[float]]:
    """Milliseconds per collect-and-export of every catalogue metric, each on several label
    sets (3 queues, 2 types, statuses, operations), through the plugin's own meter pipeline;
    returns the number of series and the times."""
    from rhythm_otel.pipeline import Pipeline
    from rhythm_otel.settings import resolve as resolve_otel

    from rhythm_core.observability.catalogue import METRICS
    from rhythm_core.observability.config import resolve
    from rhythm_core.observability.telemetry import HISTOGRAM, MetricPoint

    config = resolve({"provider": "otel", "metrics": {"enabled": True, "endpoint": endpoint,
                                                       "interval": 3600}})
    pipeline = Pipeline(config, resolve_otel(config))
    assert pipeline.aggregates is not None and pipeline.meter_provider is not None
    values = {"queue": ("orders", "emails", "billing"), "execution_type": ("task", "workflow"),
              "status": ("success", "failed"), "operation": ("claim", "report", "create"),
              "direction": ("encode", "decode"), "format": ("json",), "worker_id": ("w1",),
              "function_name": ("charge", "send_email"), "workflow_name": ("checkout",),
              "has_parent": ("true", "false"), "plugin": ("otel",), "hook": ("span_end",)}
    series = 0
    for metric in METRICS:
        label_sets: list[dict[str, str]] = [{}]
        for label in metric.labels:
            label_sets = [{**s, label: v} for s in label_sets for v in values[label]]
        for labels in label_sets:
            series += 1
            observations = (0.002, 0.03, 0.4) if metric.kind == HISTOGRAM else ()
            pipeline.aggregates.add(MetricPoint(metric.name, metric.kind, 1.0, metric.unit,
                                                labels, time.time_ns(), observations))
    took = []
    for _ in range(times):
        began = time.perf_counter()
        assert pipeline.meter_provider.force_flush(10_000)
        took.append((time.perf_counter() - began) * 1000)
    pipeline.shutdown(5)
    return series, took


if __name__ == "__main__":
    sys.exit(main())
