"""The plugin's running sums as SDK metric data, merged into what the SDK's own reader
collected: bucket counts, sum, min and max of histograms, counter totals, last gauge values,
one series per attribute set whatever the order of its keys."""

from __future__ import annotations

import bisect
import random
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from rhythm_otel.aggregation import SORT_FROM, Aggregates

from rhythm_core.observability import COUNTER, GAUGE, HISTOGRAM, MetricPoint


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


def _histogram(aggregates: Aggregates, name: str) -> Any:
    data = aggregates.merge(None, Resource.create({}))
    assert data is not None
    [point] = next(m for rm in data.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics if m.name == name).data.data_points
    return point


@pytest.mark.parametrize("size", [SORT_FROM - 1, SORT_FROM, 5 * SORT_FROM])
def test_many_observations_in_one_point_fall_in_the_buckets_one_by_one_would(size: int) -> None:
    """A busy worker's quarter second arrives as one point and is counted sorted; the counts
    must be those of putting each observation in its bucket, bounds included."""
    bounds = (0.01, 0.1, 1.0)
    rng = random.Random(size)
    values = [rng.choice([0.0, 0.01, 0.1, 1.0, 5.0, rng.uniform(0, 2)]) for _ in range(size)]
    expected = [0] * 4
    for value in values:
        expected[bisect.bisect_left(bounds, value)] += 1
    aggregates = Aggregates(InstrumentationScope("rhythm-core"), bounds)
    aggregates.add(_point("rhythm.execution.duration", HISTOGRAM, 0, {}, tuple(values)))
    aggregates.add(_point("rhythm.execution.duration", HISTOGRAM, 0.05, {}))  # then a lone one
    expected[1] += 1
    point = _histogram(aggregates, "rhythm.execution.duration")
    assert list(point.bucket_counts) == expected
    assert point.count == size + 1
    assert point.sum == pytest.approx(sum(values) + 0.05)
    assert (point.min, point.max) == (min([*values, 0.05]), max([*values, 0.05]))


def test_a_nan_among_many_observations_is_counted_as_alone() -> None:
    """A custom histogram fed a NaN: counted where a lone NaN goes, the rest unharmed."""
    values = (0.5,) * SORT_FROM + (float("nan"),)
    aggregates = Aggregates(InstrumentationScope("rhythm-core"), (0.01, 0.1, 1.0))
    aggregates.add(_point("app.latency", HISTOGRAM, 0, {}, values))
    point = _histogram(aggregates, "app.latency")
    assert point.count == SORT_FROM + 1
    assert point.bucket_counts[2] == SORT_FROM and sum(point.bucket_counts) == SORT_FROM + 1
