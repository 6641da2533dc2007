"""Metric points gathered per series before they reach the plugins.

A point per series per claim or report batch made thousands of hook calls a second on a busy
worker, each an object the plugin keeps until it exports. Histogram observations and counter
increments are therefore gathered per series and sent as one point per series at most every
:data:`FLUSH_EVERY_NS`; backends export every few seconds, so the delay changes nothing they
show.
"""

from __future__ import annotations

import time
from typing import Any

from .manager import Observability
from .telemetry import COUNTER, GAUGE, HISTOGRAM, MetricPoint

FLUSH_EVERY_NS = 250_000_000

Labels = dict[str, Any]


def seconds(start_ns: int, end_ns: int) -> float:
    return max(end_ns - start_ns, 0) / 1e9


class Meter:
    """One process side's metric series (a worker's), and when they are next sent."""

    def __init__(self, observability: Observability) -> None:
        self.obs = observability
        self._labels: dict[tuple[Any, ...], Labels] = {}
        self._histograms: dict[tuple[str, int], tuple[Labels, list[float]]] = {}
        self._counters: dict[tuple[str, str, int], tuple[Labels, list[float]]] = {}
        self._flush_due = 0

    def labels(self, *pairs: tuple[str, Any]) -> Labels:
        """One shared dict per label set, pairs whose value is None left out (points are
        never mutated, and a series is keyed by its dict's identity)."""
        found = self._labels.get(pairs)
        if found is None:
            found = self._labels[pairs] = {k: v for k, v in pairs if v is not None}
        return found

    def count(self, name: str, value: float, unit: str, labels: Labels) -> None:
        """Add a counter increment (sent at the next :meth:`flush`)."""
        key = (name, unit, id(labels))
        series = self._counters.get(key)
        if series is None:
            series = self._counters[key] = (labels, [0])
        series[1][0] += value

    def observations(self, name: str, labels: Labels) -> list[float]:
        """The list a histogram series gathers its observations in, in seconds (callers on
        the per-execution path keep it and append to it)."""
        key = (name, id(labels))
        series = self._histograms.get(key)
        if series is None:
            series = self._histograms[key] = (labels, [])
        return series[1]

    def observe(self, name: str, value: float, labels: Labels) -> None:
        """Add a histogram observation (sent at the next :meth:`flush`)."""
        self.observations(name, labels).append(value)

    def gauge(self, name: str, value: float, unit: str, labels: Labels) -> None:
        """Send a gauge reading now (gauges are read every metrics interval, not per event)."""
        self.obs.metric(MetricPoint(name, GAUGE, value, unit, labels, time.time_ns()))

    def flush(self, *, due: bool = False) -> None:
        """Send what was gathered since the last flush, one point per series; with ``due``,
        only if :data:`FLUSH_EVERY_NS` has passed since then."""
        now = time.time_ns()
        if due and now < self._flush_due:
            return
        self._flush_due = now + FLUSH_EVERY_NS
        self.before_flush()
        emit = self.obs.metric
        for (name, unit, _), (labels, total) in self._counters.items():
            if total[0]:
                emit(MetricPoint(name, COUNTER, total[0], unit, labels, now))
                total[0] = 0
        for (name, _), (labels, values) in self._histograms.items():
            if values:
                emit(MetricPoint(name, HISTOGRAM, sum(values), "s", labels, now, tuple(values)))
                values.clear()

    def before_flush(self) -> None:
        """Turn what was gathered into counter increments; subclasses derive some counters
        from histogram series rather than counting twice on the hot path."""
