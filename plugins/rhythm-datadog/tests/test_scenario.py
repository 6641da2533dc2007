"""The workflow scenario through Datadog's test agent: an application span traced by ddtrace
(a web request) enqueues a workflow of three tasks, one retried; a worker is SIGKILLed
mid-task and replaced; one trace arrives whose 128-bit ids are the rows'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhythm_core import testing
from rhythm_core.testing import failover, scenario

from .agent import TestAgent, received_span, trace_id_of
from .conftest import datadog_env
from .statsd import StatsdListener


def test_workflow_trace_survives_retry_and_failover(
    agent: TestAgent, statsd: StatsdListener, rhythm_worker_process: Any, rhythm_db: Any,
    tmp_path: Path,
) -> None:
    marker = str(tmp_path / "release")
    enqueuing = testing.from_block({"provider": "datadog", "traces": {
        "enabled": True, "sample_rate": 1.0, "endpoint": agent.url}})
    testing.activate(enqueuing.start())
    try:
        from ddtrace.trace import tracer  # after the plugin pointed ddtrace at the agent

        with tracer.trace("web.request", service="web", resource="POST /checkout") as web:
            execution_id = scenario.three_tasks.queue(marker)
        web_trace, web_span = f"{web.trace_id:032x}", f"{web.span_id:016x}"
    finally:
        enqueuing.shutdown(5.0)
        testing.activate(testing.DISABLED)

    def in_trace() -> list[dict[str, Any]]:
        return [s for s in agent.spans() if trace_id_of(s) == web_trace]

    failover.drive(
        rhythm_worker_process, datadog_env(agent.url, statsd.port), marker, execution_id,
        lambda: failover.finished_work_sent(s["name"] for s in in_trace()),
    )
    spans = failover.wait_until(
        lambda: (found := in_trace()) and any(s["name"] == "web.request" for s in found)
        and found, "the application's span never arrived")
    rows = failover.check(rhythm_db, [received_span(s) for s in spans], web_trace, web_span)

    # the upper half of the 128-bit id as Datadog carries it, once in each chunk
    chunks = [c for c in agent.traces() if any(s in spans for s in c)]
    for chunk in chunks:
        tids = [s["meta"]["_dd.p.tid"] for s in chunk if "_dd.p.tid" in s["meta"]]
        assert tids and set(tids) == {web_trace[:16]}
    # Datadog's view: service, resource, type, error tags
    executions = [s for s in spans if s["name"].startswith(("task.", "workflow."))]
    for span in executions:
        assert span["service"] == "rhythm-tests"
        assert span["resource"] == span["meta"]["rhythm.function_name"]
        assert span["type"] == "worker"
        assert span["meta"].get("env") == "test"
    flaky = rows[scenario.flaky_once.name]
    failed = [s for s in spans if s["name"] == "function.invoke" and s["error"] == 1
              and f"{s['parent_id']:016x}" == flaky[4]]
    assert len(failed) == 1
    meta = failed[0]["meta"]
    assert meta["error.type"] == "RuntimeError"
    assert meta["error.message"] == "first attempt fails on purpose"
    assert "Traceback" in meta["error.stack"]
    assert agent.check_failures() == ""  # the agent's own checks of what it received
