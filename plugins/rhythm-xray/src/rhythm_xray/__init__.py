"""rhythm-core's AWS provider (``xray``): aws-xray-sdk segments and CloudWatch EMF metrics.

Loaded by name through the ``rhythm.observability`` entry point. Importing this package
imports neither aws-xray-sdk nor aws-embedded-metrics: that happens when the core calls
``rhythm_observability_configure``, and only for what is enabled.
"""

from __future__ import annotations

from .plugin import XRayPlugin

plugin = XRayPlugin()

__all__ = ["XRayPlugin", "plugin"]
