from __future__ import annotations

from collections.abc import Iterator

import pytest

from .agent import TestAgent
from .statsd import StatsdListener


@pytest.fixture(scope="session")
def session_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestAgent]:
    agent = TestAgent(tmp_path_factory.mktemp("test-agent"))
    yield agent
    agent.stop()


@pytest.fixture
def agent(session_agent: TestAgent) -> Iterator[TestAgent]:
    """Datadog's test agent on loopback, emptied for the test."""
    session_agent.clear()
    yield session_agent


@pytest.fixture
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    yield listener
    listener.stop()


def datadog_env(agent_url: str, statsd_port: int, **extra: str) -> dict[str, str]:
    """A worker process with the datadog provider, sending to this agent and DogStatsD port."""
    return {
        "RHYTHM_OBSERVABILITY_PROVIDER": "datadog",
        "RHYTHM_TRACING_ENABLED": "true",
        "RHYTHM_TRACES_SAMPLE_RATE": "1.0",
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_METRICS_INTERVAL": "0.5",
        "DD_TRACE_AGENT_URL": agent_url,
        "DD_DOGSTATSD_PORT": str(statsd_port),
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_SERVICE": "rhythm-tests",
        "DD_ENV": "test",
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        **extra,
    }
