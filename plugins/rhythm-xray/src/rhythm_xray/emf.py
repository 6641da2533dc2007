"""The core's metric points as CloudWatch Embedded Metric Format documents.

Points are summed between two flushes (counters added, the last gauge value kept, histogram
observations listed) and at each flush become one ``MetricsContext`` of aws-embedded-metrics
per label set: the labels (and the configured tags, and ``ServiceName``) are the dimensions.
The library's serializer writes the documents, at most 100 metrics and 100 values of a metric
in each; they go to the CloudWatch agent over TCP or UDP, or to stdout.

A histogram series keeps at most ``MAX_VALUES`` observations between flushes, a uniform
sample beyond that (CloudWatch computes percentiles from the values it receives); the
``rhythm.executions.*`` counters keep exact counts.
"""

from __future__ import annotations

import logging
import math
import random
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aws_embedded_metrics.logger.metrics_context import MetricsContext
from aws_embedded_metrics.serializers.log_serializer import LogSerializer

from rhythm_core.observability import COUNTER, GAUGE, HISTOGRAM, MetricPoint

from .settings import STDOUT, XRaySettings

log = logging.getLogger("rhythm_xray")
MAX_VALUES = 1_000
MAX_DIMENSION = 1_024  # CloudWatch's limit on a dimension value
UNITS = {
    "s": "Seconds",
    "ms": "Milliseconds",
    "us": "Microseconds",
    "By": "Bytes",
    "%": "Percent",
    "1": "None",
}
KINDS_PROPERTY = "rhythm_metric_kinds"  # which statistic fits each metric, for Logs Insights
Key = tuple[tuple[str, Any], ...]


def cloudwatch_unit(unit: str) -> str:
    """A UCUM unit as CloudWatch names it; ``{execution}`` and the like are counts."""
    if unit.startswith("{"):
        return "Count"
    return UNITS.get(unit, "None")


def dimension_value(value: Any) -> str:
    """Dimension values must be non-empty ASCII of at most 1,024 characters."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    text = text.encode("ascii", "replace").decode("ascii").strip()
    return text[:MAX_DIMENSION] or "none"


class Reservoir:
    """A uniform sample of at most ``size`` of the observations it is given (Li's Algorithm
    L): once full, it draws how many observations to skip before the next one it keeps, so
    a busy worker's thousands of durations a second cost a slice and a few draws, not a
    draw each."""

    __slots__ = ("_gap_weight", "_next", "seen", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: list[float] = []
        self.seen = 0  # observations given so far
        self._gap_weight = 0.0
        self._next = 0  # 0-based index, among all observations, of the next one kept

    def extend(self, observed: tuple[float, ...]) -> None:
        values, size, first = self.values, self.size, self.seen
        self.seen += len(observed)
        if len(values) < size:
            room = size - len(values)
            values.extend(observed[:room])
            if len(values) < size:
                return
            self._gap_weight = math.exp(math.log(_uniform()) / size)
            self._next = size + self._gap()
        while self._next < self.seen:
            values[int(random.random() * size)] = observed[self._next - first]
            self._gap_weight *= math.exp(math.log(_uniform()) / size)
            self._next += 1 + self._gap()

    def _gap(self) -> int:
        """How many observations to pass over before the next one kept."""
        weight = self._gap_weight
        if weight >= 1.0:  # rounding, early on a large reservoir: keep the next one
            return 0
        return int(math.log(_uniform()) / math.log1p(-weight))


def _uniform() -> float:
    """Uniform on (0, 1): a logarithm is taken of it."""
    while True:
        drawn = random.random()
        if drawn > 0.0:
            return drawn


class _Series:
    __slots__ = ("kind", "sample", "unit", "value")

    def __init__(self, kind: str, unit: str) -> None:
        self.kind, self.unit = kind, unit
        self.value = 0.0
        self.sample = Reservoir(MAX_VALUES)  # histogram observations


class Metrics:
    """Points summed per name and label set until :meth:`contexts` takes them."""

    def __init__(self, settings: XRaySettings, tags: Mapping[str, str]) -> None:
        self.namespace = settings.namespace
        self.base = {"ServiceName": dimension_value(settings.service)}
        self.base.update({str(k): dimension_value(v) for k, v in tags.items()})
        self._series: dict[Key, dict[str, _Series]] = {}
        self.refused = 0  # label sets the library refused
        self._lock = threading.Lock()

    def add(self, point: MetricPoint) -> None:
        key = tuple(point.attributes.items())
        with self._lock:
            group = self._series.setdefault(key, {})
            series = group.get(point.name)
            if series is None:
                series = group[point.name] = _Series(point.kind, point.unit)
            if point.kind == COUNTER:
                series.value += point.value
            elif point.kind == GAUGE:
                series.value = point.value
            elif point.kind == HISTOGRAM:
                series.sample.extend(point.each())

    def contexts(self) -> list[MetricsContext]:
        """One context per label set with everything summed since the last call."""
        with self._lock:
            taken, self._series = self._series, {}
        contexts = []
        for key, group in taken.items():
            try:
                contexts.append(self._context(key, group))
            except Exception as exc:  # the library refused it (too many dimensions...)
                self.refused += 1
                if self.refused == 1:
                    log.warning(
                        "rhythm-xray: metrics with labels %s were not sent: %s (logged once)",
                        dict(key),
                        exc,
                    )
        return contexts

    def _context(self, key: Key, group: dict[str, _Series]) -> MetricsContext:
        context = MetricsContext(namespace=self.namespace)
        context.put_dimensions({**self.base, **{k: dimension_value(v) for k, v in key}})
        kinds = {}
        for name, series in group.items():
            unit = cloudwatch_unit(series.unit)
            values = series.sample.values if series.kind == HISTOGRAM else [series.value]
            for value in values:
                if math.isfinite(value):  # CloudWatch takes finite numbers only
                    context.put_metric(name, value, unit)
            kinds[name] = series.kind
        context.set_property(KINDS_PROPERTY, kinds)
        return context


class Sink:
    """Writes EMF documents where the CloudWatch agent reads them: its TCP or UDP listener,
    or stdout. A write that fails loses its documents, counted and logged once; the next
    flush connects again."""

    def __init__(self, settings: XRaySettings, timeout: float = 2.0) -> None:
        self.endpoint, self.timeout = settings.emf_endpoint, timeout
        self.meta: dict[str, str] = {"LogGroupName": settings.log_group}
        if settings.log_stream:
            self.meta["LogStreamName"] = settings.log_stream
        self.dropped = 0  # documents lost
        self._socket: socket.socket | None = None
        if self.endpoint != STDOUT:
            parts = urlsplit(self.endpoint)
            self.udp = parts.scheme == "udp"
            self.address = (parts.hostname or "127.0.0.1", parts.port or 25888)

    def send(self, contexts: list[MetricsContext]) -> int:
        """Serialize and write; returns the number of documents written."""
        documents = []
        for context in contexts:
            context.meta.update(self.meta)
            documents.extend(LogSerializer.serialize(context))
        if not documents:
            return 0
        if self.endpoint == STDOUT:
            sys.stdout.write("".join(d + "\n" for d in documents))
            sys.stdout.flush()
            return len(documents)
        try:
            self._write(documents)
        except OSError as exc:
            self.close()
            self.dropped += len(documents)
            if self.dropped == len(documents):
                log.warning(
                    "rhythm-xray: EMF documents could not be sent to the CloudWatch agent at "
                    "%s (%s); dropped and counted, logged once",
                    self.endpoint,
                    exc,
                )
            return 0
        return len(documents)

    def _write(self, documents: list[str]) -> None:
        if self.udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for document in documents:  # one document a datagram
                    udp.sendto((document + "\n").encode(), self.address)
            return
        if self._socket is None:
            self._socket = socket.create_connection(self.address, self.timeout)
        self._socket.sendall("".join(d + "\n" for d in documents).encode())

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None


class Flusher:
    """Sends what :class:`Metrics` summed, every ``interval`` seconds and when asked."""

    def __init__(self, metrics: Metrics, sink: Sink, interval: float) -> None:
        self.metrics, self.sink, self.interval = metrics, sink, interval
        self._last = time.monotonic()
        self._lock = threading.Lock()  # the queue's thread, and flush or shutdown callers

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval

    def flush(self) -> int:
        with self._lock:
            self._last = time.monotonic()
            return self.sink.send(self.metrics.contexts())
