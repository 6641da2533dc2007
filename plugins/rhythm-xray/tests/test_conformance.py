"""The core's conformance suite, with the plugin loaded by name, spans read back from moto's
X-Ray API (through the daemon stand-in) and metrics from the EMF listener."""

from __future__ import annotations

from typing import Any

import pytest

from rhythm_core.testing.conformance import PluginConformance

from .emf import EmfListener
from .xray import Daemon, Reader, core_id


class TestXRayConformance(PluginConformance):
    # X-Ray times are float seconds: the nearest double to a nanosecond time is within 0.25 µs
    timestamp_tolerance_ns = 1_000

    @pytest.fixture
    def conformance_plugin(self) -> str:
        return "xray"  # through the rhythm.observability entry point, as users select it

    @pytest.fixture
    def conformance_options(self, daemon: Daemon, emf: EmfListener) -> dict[str, Any]:
        return {
            "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": daemon.address},
            "metrics": {"enabled": True, "interval": 0.5, "endpoint": emf.endpoint},
        }

    @pytest.fixture
    def conformance_reader(self, reader: Reader) -> Reader:
        return reader

    @pytest.fixture
    def conformance_current(self) -> Any:
        from aws_xray_sdk.core import xray_recorder

        def read() -> tuple[str, str, bool] | None:
            # quietly: get_trace_entity() reports a missing context as an error
            entity = getattr(xray_recorder.context, "current", lambda: None)()
            if entity is None:
                return None
            return core_id(entity.trace_id), entity.id, bool(entity.sampled)

        return read
