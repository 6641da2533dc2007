"""Failed work is always kept: with the sample rate at 0 and errors sampled, only the failed
execution reaches the agent, with Datadog's user-keep priority (``manual.keep``)."""

from __future__ import annotations

from typing import Any

from rhythm_core import ExecutionFailed
from rhythm_core.testing import scenario
from rhythm_core.testing.failover import wait_until

from .agent import TestAgent

USER_KEEP = 2


def test_a_failure_is_kept_with_manual_keep(agent: TestAgent, rhythm_worker: Any,
                                            rhythm_db: Any) -> None:
    import rhythm_core

    rhythm_worker(scenario.QUEUE, observability={
        "provider": "datadog",
        "traces": {"enabled": True, "sample_rate": 0.0, "sample_errors": True,
                   "endpoint": agent.url},
    })
    fine = scenario.noop.queue_many([()] * 5)
    failing = scenario.flaky_always.queue(7)
    for execution_id in fine:
        rhythm_core.wait(execution_id, timeout=30)
    try:
        rhythm_core.wait(failing, timeout=30)
    except ExecutionFailed:
        pass
    else:
        raise AssertionError("flaky_always did not fail")
    name = f"task.{scenario.flaky_always.name}"
    spans = wait_until(lambda: [s for s in agent.spans() if s["name"] == name],
                       "the failed execution's span never arrived")
    (span,) = spans
    assert span["error"] == 1
    assert span["meta"]["error.type"] == "ValueError"
    assert span["meta"]["rhythm.sampling.kept_for_error"] == "true"
    # the priority travels on the chunk's first span: the failed execution's spans are one
    (chunk,) = [c for c in agent.traces() if any(s["span_id"] == span["span_id"] for s in c)]
    priorities = {s["metrics"]["_sampling_priority_v1"] for s in chunk
                  if "_sampling_priority_v1" in s["metrics"]}
    assert priorities == {USER_KEEP}
    assert {s["name"] for s in chunk} >= {name, "function.invoke"}
    # the executions that succeeded were not sampled: nothing of theirs was sent
    assert not [s for s in agent.spans() if s["name"] == f"task.{scenario.noop.name}"]
