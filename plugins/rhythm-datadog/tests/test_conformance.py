"""The core's conformance suite, with the plugin loaded by name and read back from Datadog's
test agent (spans) and a DogStatsD listener (metrics)."""

from __future__ import annotations

from typing import Any

import pytest

from rhythm_core.testing.conformance import PluginConformance, ReceivedMetric, ReceivedSpan

from .agent import TestAgent, received_span
from .statsd import StatsdListener

KINDS = {"c": "counter", "g": "gauge", "d": "histogram", "h": "histogram"}


class AgentReader:
    def __init__(self, agent: TestAgent, statsd: StatsdListener) -> None:
        self.agent, self.statsd = agent, statsd

    def spans(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in map(received_span, self.agent.spans()) if s.trace_id == trace_id]

    def metrics(self) -> list[ReceivedMetric]:
        return [ReceivedMetric(d.name, KINDS[d.type]) for d in self.statsd.received()]


class TestDatadogConformance(PluginConformance):
    # ddtrace's public finish() takes float seconds: end times within a quarter microsecond
    timestamp_tolerance_ns = 1_000

    @pytest.fixture
    def conformance_plugin(self) -> str:
        return "datadog"  # through the rhythm.observability entry point, as users select it

    @pytest.fixture
    def conformance_options(self, agent: TestAgent, statsd: StatsdListener) -> dict[str, Any]:
        return {
            "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": agent.url},
            "metrics": {"enabled": True, "interval": 0.5,
                        "endpoint": f"127.0.0.1:{statsd.port}"},
        }

    @pytest.fixture
    def conformance_reader(self, agent: TestAgent, statsd: StatsdListener) -> AgentReader:
        return AgentReader(agent, statsd)

    @pytest.fixture
    def conformance_current(self) -> Any:
        from ddtrace.trace import tracer

        def read() -> tuple[str, str, bool] | None:
            active = tracer.context_provider.active()
            if active is None:
                return None
            priority = active.context.sampling_priority
            return f"{active.trace_id:032x}", f"{active.span_id:016x}", (priority or 0) > 0

        return read
