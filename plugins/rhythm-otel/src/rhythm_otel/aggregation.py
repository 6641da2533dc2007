"""The core's metric points summed in the plugin, handed to the SDK's readers as data.

The SDK's synchronous instruments build a measurement object, check attributes and hash a
lookup on every ``add``/``record``, several times per execution, and its observable
instruments do as much per series at every collection. The catalogue's attribute sets are
few and fixed, so the plugin keeps running sums itself, a fraction of that work per
observation (bench.otel_overhead), and at each collection merges them into the batch the SDK
collected (:meth:`Aggregates.merge`) as cumulative data points of the SDK's own data model:
counters as monotonic sums, gauges as gauges, histograms with the catalogue's buckets.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from rhythm_core.observability import BY_NAME, COUNTER, GAUGE, HISTOGRAM, MetricPoint

from .sdk import preferences

Key = tuple[tuple[str, Any], ...]
CUMULATIVE = AggregationTemporality.CUMULATIVE
# From this many observations in one point, sorting them and searching once per bound is
# cheaper than a search per observation; for a handful it is the other way round
SORT_FROM = 32


class _Histogram:
    __slots__ = ("count", "counts", "high", "low", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.total = 0.0
        self.count = 0
        self.low = float("inf")
        self.high = float("-inf")


def _count_one_by_one(
    histogram: _Histogram, bounds: tuple[float, ...], observed: Sequence[float]
) -> None:
    counts = histogram.counts
    for value in observed:
        counts[bisect_left(bounds, value)] += 1
    histogram.low = min(histogram.low, *observed)
    histogram.high = max(histogram.high, *observed)


def _count_sorted(histogram: _Histogram, bounds: tuple[float, ...], ordered: list[float]) -> None:
    """As :func:`_count_one_by_one` for many observations (a quarter second of a busy
    worker's durations arrives as one point): one search per bound, not per observation.
    Bucket ``i`` holds ``bounds[i-1] < v <= bounds[i]``, where ``bisect_left`` puts ``v``."""
    counts, below = histogram.counts, 0
    for i, bound in enumerate(bounds):
        upto = bisect_right(ordered, bound, below)
        counts[i] += upto - below
        below = upto
    counts[-1] += len(ordered) - below
    histogram.low = min(histogram.low, ordered[0])
    histogram.high = max(histogram.high, ordered[-1])


class Aggregates:
    """Running sums per metric name and attribute set, since the pipeline started."""

    def __init__(self, scope: InstrumentationScope, bounds: Sequence[float]) -> None:
        self._scope = scope
        self._bounds = tuple(bounds)
        self._lock = threading.Lock()
        self._start_ns = time.time_ns()
        self._keys: dict[Key, Key] = {}  # as given -> sorted, so one set is one series
        self._values: dict[str, dict[Key, float]] = {}  # counters and gauges
        self._kinds: dict[str, str] = {}
        self._histograms: dict[str, dict[Key, _Histogram]] = {}
        self._meta: dict[str, tuple[str, str]] = {}  # name -> (unit, description)

    def add(self, point: MetricPoint) -> None:
        """Called on the hot path with each point the core emits."""
        given = tuple(point.attributes.items())
        key = self._keys.get(given)
        if key is None:
            key = self._keys.setdefault(given, tuple(sorted(given)))
        kind = point.kind
        with self._lock:
            if kind == HISTOGRAM:
                series = self._histograms.get(point.name)
                if series is None:
                    series = self._histograms[point.name] = {}
                    self._describe(point)
                found = series.get(key)
                if found is None:
                    found = series[key] = _Histogram(len(self._bounds) + 1)
                observed = point.each()
                total = sum(observed)
                # a NaN (a custom metric's) has no place in a sorted list
                if len(observed) < SORT_FROM or total != total:
                    _count_one_by_one(found, self._bounds, observed)
                else:
                    _count_sorted(found, self._bounds, sorted(observed))
                found.total += total
                found.count += len(observed)
                return
            values = self._values.get(point.name)
            if values is None:
                if kind not in (COUNTER, GAUGE):
                    return
                values = self._values[point.name] = {}
                self._kinds[point.name] = kind
                self._describe(point)
            values[key] = values.get(key, 0) + point.value if kind == COUNTER else point.value

    def _describe(self, point: MetricPoint) -> None:
        known = BY_NAME.get(point.name)
        self._meta[point.name] = (
            known.unit if known else point.unit,
            known.description if known else "",
        )

    def collect(self) -> list[Metric]:
        """Every metric as cumulative OTLP data, as of now."""
        now, start, bounds = time.time_ns(), self._start_ns, self._bounds
        out = []
        with self._lock:
            for name, values in self._values.items():
                unit, description = self._meta[name]
                points = [NumberDataPoint(dict(k), start, now, v) for k, v in values.items()]
                data: Sum | Gauge = (
                    Sum(points, CUMULATIVE, True) if self._kinds[name] == COUNTER else Gauge(points)
                )
                out.append(Metric(name, description, unit, data))
            for name, series in self._histograms.items():
                unit, description = self._meta[name]
                buckets = [
                    HistogramDataPoint(
                        dict(key),
                        start,
                        now,
                        h.count,
                        h.total,
                        list(h.counts),
                        bounds,
                        h.low,
                        h.high,
                    )
                    for key, h in series.items()
                ]
                out.append(Metric(name, description, unit, Histogram(buckets, CUMULATIVE)))
        return out

    def merge(self, data: MetricsData | None, resource: Resource) -> MetricsData | None:
        """``data`` as the SDK collected it, with the plugin's metrics added under our scope."""
        metrics = self.collect()
        if not metrics:
            return data
        if data is None or not data.resource_metrics:
            ours = ScopeMetrics(self._scope, metrics, "")
            return MetricsData([ResourceMetrics(resource, [ours], "")])
        first, *rest = data.resource_metrics
        # one ScopeMetrics per scope: the OTLP encoder keys them by scope, so a second one
        # with the same scope would replace the first
        scopes, merged = [], False
        for scope in first.scope_metrics:
            if scope.scope == self._scope and not merged:
                scope = replace(scope, metrics=[*scope.metrics, *metrics])
                merged = True
            scopes.append(scope)
        if not merged:
            scopes.append(ScopeMetrics(self._scope, metrics, ""))
        return MetricsData([replace(first, scope_metrics=scopes), *rest])


class MergingExporter(MetricExporter):
    """An OTLP metric exporter whose batches also carry the plugin's histograms."""

    def __init__(self, inner: MetricExporter, aggregates: Aggregates, resource: Resource):
        super().__init__(*preferences(inner))
        self.inner, self.aggregates, self.resource = inner, aggregates, resource
        self.failed = 0  # exports the backend did not take (counted for the line at exit)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        merged = self.aggregates.merge(metrics_data, self.resource)
        assert merged is not None
        result = self.inner.export(merged, timeout_millis=timeout_millis, **kwargs)
        if result is not MetricExportResult.SUCCESS:
            self.failed += 1
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
