"""The public surface for observability plugin authors: everything a plugin imports.

    from rhythm_core.observability import BackendPlugin, Span, MetricPoint, hookimpl

The hooks a plugin implements are documented in :mod:`rhythm_core.observability.hookspecs`
and in docs/writing-a-plugin.md. The other modules of this package (the facade, the worker's
instruments, the enqueue side) are the core's own and may change between releases.

What is here:

- ``hookimpl``: the marker for hook implementations (project ``rhythm``).
- ``Span``, ``SpanContext``, ``MetricPoint`` and the constants their fields take: span kinds
  (``INTERNAL``, ``CLIENT``, ``PRODUCER``, ``CONSUMER``), statuses (``UNSET``, ``OK``,
  ``ERROR``) and metric kinds (``COUNTER``, ``HISTOGRAM``, ``GAUGE``).
- ``ObservabilityConfig`` (with ``TracesConfig`` and ``MetricsConfig``): the resolved
  configuration ``rhythm_observability_configure`` receives; ``ConfigError`` for bad
  settings; ``setting`` and ``Setting`` to read a plugin's own options by the core's
  precedence; ``port_number`` to check a port.
- ``BackendPlugin`` and ``Backend``: the per-process backend lifecycle (build on configure,
  stop on shutdown, rebuilt after a fork).
- ``TelemetryQueue``, ``BatchQueue`` and ``let_others_run``: a bounded queue drained by a
  send thread, so that hooks never do I/O.
- ``METRICS``, ``BY_NAME``, ``Metric`` and ``DURATION_BUCKETS``: the metric catalogue.
"""

from ..errors import ConfigError
from .backends import Backend, BackendPlugin
from .batching import BatchQueue, TelemetryQueue, let_others_run
from .catalogue import BY_NAME, DURATION_BUCKETS, METRICS, Metric
from .config import MetricsConfig, ObservabilityConfig, Setting, TracesConfig, port_number, setting
from .hookspecs import hookimpl
from .telemetry import (
    CLIENT,
    CONSUMER,
    COUNTER,
    ERROR,
    GAUGE,
    HISTOGRAM,
    INTERNAL,
    OK,
    PRODUCER,
    UNSET,
    MetricPoint,
    Span,
    SpanContext,
)

__all__ = [
    "BY_NAME",
    "CLIENT",
    "CONSUMER",
    "COUNTER",
    "DURATION_BUCKETS",
    "ERROR",
    "GAUGE",
    "HISTOGRAM",
    "INTERNAL",
    "METRICS",
    "OK",
    "PRODUCER",
    "UNSET",
    "Backend",
    "BackendPlugin",
    "BatchQueue",
    "ConfigError",
    "Metric",
    "MetricPoint",
    "MetricsConfig",
    "ObservabilityConfig",
    "Setting",
    "Span",
    "SpanContext",
    "TelemetryQueue",
    "TracesConfig",
    "hookimpl",
    "let_others_run",
    "port_number",
    "setting",
]
