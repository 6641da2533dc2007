"""rhythm-core's Datadog provider (``datadog``): ddtrace spans and DogStatsD metrics.

Loaded by name through the ``rhythm.observability`` entry point. Importing this package
imports neither ddtrace nor the datadog client: that happens when the core calls
``rhythm_observability_configure``.
"""

from __future__ import annotations

from .plugin import DatadogPlugin

plugin = DatadogPlugin()

__all__ = ["DatadogPlugin", "plugin"]
