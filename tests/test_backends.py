"""The backend-plugin lifecycle: one backend built per configuration, stopped on shutdown."""

from __future__ import annotations

from rhythm_core import ObservabilityConfig, hookimpl, plugins
from rhythm_core.backends import BackendPlugin
from rhythm_core.telemetry import MetricPoint


class _Backend:
    def __init__(self, config: ObservabilityConfig) -> None:
        self.service = config.service_name
        self.stopped: list[float] = []

    def shutdown(self, timeout: float) -> None:
        self.stopped.append(timeout)


class _Plugin(BackendPlugin[_Backend]):
    name = "lifecycle"

    def build(self, config: ObservabilityConfig) -> _Backend:
        return _Backend(config)

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        """A plugin that emits nothing is not enabled: this one takes metrics."""


def test_configure_builds_and_shutdown_stops_once() -> None:
    plugin = _Plugin()
    assert plugin.backend is None
    observability = plugins.from_block({"plugins": [plugin], "service_name": "billing",
                                        "metrics": {"enabled": True}}).start()
    backend = plugin.backend
    assert backend is not None and backend.service == "billing"
    observability.shutdown(3.0)
    assert plugin.backend is None and backend.stopped == [3.0]
    plugin.rhythm_observability_shutdown(1.0)  # a second shutdown finds nothing to stop
    assert backend.stopped == [3.0]
