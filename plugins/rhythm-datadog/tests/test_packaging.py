"""What a user gets from ``pip install "rhythm-core[datadog]"``: wheels built from this
checkout, installed into a fresh virtual environment, give a worker that loads ``datadog``
by name, and its span reaches the agent."""

from __future__ import annotations

from pathlib import Path

from rhythm_core.testing.failover import wait_until
from rhythm_core.testing.packaging import install_and_run

from .agent import ROOT, TestAgent, trace_id_of


def test_wheels_install_into_a_fresh_environment(
    tmp_path: Path, agent: TestAgent, rhythm_database_url: str
) -> None:
    trace_id = install_and_run(ROOT, "rhythm-datadog", "datadog", "rhythm_datadog", agent.url,
                               rhythm_database_url, tmp_path,
                               {"DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false"})
    wait_until(lambda: any(trace_id_of(s) == trace_id for s in agent.spans()),
               "the packaged worker's span never reached the agent")
