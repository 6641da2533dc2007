"""The plugin's running sums as SDK metric data, merged into what the SDK's own reader
collected: bucket counts, sum, min and max of histograms, counter totals, last gauge values,
one series per attribute set whatever the order of its keys."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from rhythm_otel.aggregation import Aggregates

from rhythm_core.telemetry import COUNTER, GAUGE, HISTOGRAM, MetricPoint


def _point(name: str, kind: str, value: float, labels: dict[str, Any],
           observations: tuple[float, ...] = ()) -> MetricPoint:
    return MetricPoint(name, kind, value, "s", labels, 0, observations)


def test_sums_reach_the_sdk_collection() -> None:
    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader])
    aggregates = Aggregates(InstrumentationScope("rhythm-core"), (0.01, 0.1, 1.0))
    a, b = {"queue": "q", "status": "success"}, {"status": "success", "queue": "q"}
    aggregates.add(_point("rhythm.execution.duration", HISTOGRAM, 0, a, (0.005, 0.05, 0.5)))
    aggregates.add(_point("rhythm.execution.duration", HISTOGRAM, 2.0, b))  # same series
    aggregates.add(_point("rhythm.executions.completed", COUNTER, 3, a))
    aggregates.add(_point("rhythm.executions.completed", COUNTER, 2, b))
    aggregates.add(_point("rhythm.workers.active", GAUGE, 4, {}))
    aggregates.add(_point("rhythm.workers.active", GAUGE, 2, {}))

    data = aggregates.merge(reader.get_metrics_data(), Resource.create({}))
    assert data is not None
    metrics = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics}
    [histogram] = metrics["rhythm.execution.duration"].data.data_points
    assert list(histogram.bucket_counts) == [1, 1, 1, 1]  # <=0.01, <=0.1, <=1, above
    assert histogram.count == 4 and histogram.sum == pytest.approx(2.555)
    assert (histogram.min, histogram.max) == (0.005, 2.0)
    assert dict(histogram.attributes) == a
    [completed] = metrics["rhythm.executions.completed"].data.data_points
    assert completed.value == 5 and metrics["rhythm.executions.completed"].data.is_monotonic
    [workers] = metrics["rhythm.workers.active"].data.data_points
    assert workers.value == 2
    assert metrics["rhythm.execution.duration"].unit == "s"  # from the catalogue
    assert metrics["rhythm.executions.completed"].unit == "{execution}"
