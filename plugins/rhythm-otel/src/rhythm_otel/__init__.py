"""rhythm-core's OpenTelemetry provider (``otel``): OTLP traces and metrics, Prometheus.

Loaded by name through the ``rhythm.observability`` entry point; nothing is set up until the
core calls ``rhythm_observability_configure``.
"""

from __future__ import annotations

from .plugin import OtelPlugin

plugin = OtelPlugin()

__all__ = ["OtelPlugin", "plugin"]
