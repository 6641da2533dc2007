"""The backend-plugin lifecycle: one backend built per configuration, stopped on shutdown."""

from __future__ import annotations

from typing import Any

from rhythm_core import ObservabilityConfig, hookimpl, testing
from rhythm_core.observability.backends import BackendPlugin
from rhythm_core.observability.telemetry import MetricPoint


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
    observability = testing.from_block({"plugins": [plugin], "service_name": "billing",
                                        "metrics": {"enabled": True}}).start()
    backend = plugin.backend
    assert backend is not None and backend.service == "billing"
    observability.shutdown(3.0)
    assert plugin.backend is None and backend.stopped == [3.0]
    plugin.rhythm_observability_shutdown(1.0)  # a second shutdown finds nothing to stop
    assert backend.stopped == [3.0]


def test_configurations_share_the_backend_until_the_last_shuts_down() -> None:
    plugin = _Plugin()
    enqueueing = testing.from_block({"plugins": [plugin], "service_name": "web",
                                     "metrics": {"enabled": True}}).start()
    first = plugin.backend
    worker = testing.from_block({"plugins": [plugin], "service_name": "worker",
                                 "metrics": {"enabled": True}}).start()
    second = plugin.backend
    assert first is not None and second is not None and second.service == "worker"
    assert first.stopped == [plugin.replaced_timeout]  # replaced: sent what it held
    worker.shutdown(2.0)
    assert plugin.backend is second and second.stopped == []  # the enqueueing side goes on
    enqueueing.shutdown(3.0)
    assert plugin.backend is None and second.stopped == [3.0]


def test_a_forked_child_configures_its_own_backend() -> None:
    import os

    plugin = _Plugin()
    observability = testing.from_block({"plugins": [plugin], "metrics": {"enabled": True}})
    observability.start()
    parent_backend = plugin.backend
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the core's fork hook configured the child again
        child_backend = plugin.backend
        observability.shutdown(1.0)
        fresh = child_backend is not None and child_backend is not parent_backend
        stopped = child_backend is not None and child_backend.stopped == [1.0]
        os.write(write, f"{fresh} {stopped} {plugin.backend is None}".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as answer:
        assert answer.read() == "True True True"
    assert plugin.backend is parent_backend and parent_backend is not None
    assert parent_backend.stopped == []  # the child's shutdown did not touch the parent's
    observability.shutdown(1.0)
    assert parent_backend.stopped == [1.0]


class _Hanging:
    """A plugin whose shutdown never returns in time (a backend that hangs)."""

    name = "hanging"

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    @hookimpl
    def rhythm_span_end(self, span: Any) -> None:
        pass

    @hookimpl
    def rhythm_observability_shutdown(self, timeout: float) -> None:
        self.release.wait(60)


def test_a_plugin_whose_shutdown_hangs_is_left_behind_on_time(caplog: Any) -> None:
    import logging
    import time

    hanging, recorder = _Hanging(), testing.RecordingPlugin()
    observability = testing.from_block({"plugins": [hanging, recorder],
                                        "traces": {"enabled": True}})
    caplog.set_level(logging.WARNING, logger="rhythm.observability")
    began = time.monotonic()
    try:
        observability.shutdown(0.5)
        took = time.monotonic() - began
    finally:
        hanging.release.set()
    assert took < 1.0, took  # the budget and the slack, not the plugin's 60 s
    # the other plugin was still asked, with what was left of the budget; the hanging one was
    # left behind, with a warning
    assert len(recorder.shutdowns) == 1 and recorder.shutdowns[0] <= 0.5
    left_behind = [r for r in caplog.records if "did not finish shutting down" in r.getMessage()]
    assert len(left_behind) == 1 and "hanging" in left_behind[0].getMessage()
