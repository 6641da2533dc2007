"""The application's own ddtrace instrumentation inside tasks and workflows nests under the
execution's spans: over the wire, with ddtrace's requests and psycopg integrations, a
loopback HTTP server that keeps what it was sent, and Datadog's test agent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rhythm_core.testing import user_code
from rhythm_core.testing.failover import wait_until
from rhythm_core.testing.loopback import HeaderServer

from .agent import TestAgent, trace_id_of
from .conftest import datadog_env
from .statsd import StatsdListener

APP = Path(__file__).parent / "apps" / "datadog_app.py"


def start(agent: TestAgent, statsd: StatsdListener, spawn: Any, **extra: str) -> None:
    user_code.serve(spawn, datadog_env(agent.url, statsd.port, **extra), APP)


def in_trace(agent: TestAgent, trace_id: str) -> list[dict[str, Any]]:
    return [s for s in agent.spans() if trace_id_of(s) == trace_id]


def of_execution(spans: list[dict[str, Any]], name: str, execution_id: str) -> list[Any]:
    return [s for s in spans
            if s["name"] == name and s["meta"].get("rhythm.execution_id") == execution_id]


def kept(span: dict[str, Any]) -> bool:
    """Whether the span's chunk was kept by the sampling decision it carries."""
    return span.get("metrics", {}).get("_sampling_priority_v1", 1) > 0


def test_http_and_query_spans_are_children_of_the_attempt(
    agent: TestAgent, statsd: StatsdListener, rhythm_worker_process: Any, rhythm_db: Any,
    rhythm_header_server: HeaderServer,
) -> None:
    start(agent, statsd, rhythm_worker_process)
    for done in user_code.call_out(rhythm_db, rhythm_header_server):

        def arrived(done: user_code.CalledOut = done) -> Any:
            spans = in_trace(agent, done.trace_id)
            invoke = of_execution(spans, "function.invoke", done.execution_id)
            http = [s for s in spans if s["name"] == "requests.request"]
            query = [s for s in spans if s["name"] == "postgres.query"]
            return invoke and http and query and (invoke[0], http, query)

        invoke, http, query = wait_until(arrived, f"{done.function}: spans missing")
        assert [s["parent_id"] for s in http + query] == [invoke["span_id"]] * 2, done.function
        assert all(kept(s) for s in http + query)
        # the server downstream was sent the execution's trace, under the client's span
        headers = done.headers
        assert headers["x-datadog-trace-id"] == str(int(done.trace_id[16:], 16))
        assert headers["x-datadog-parent-id"] == str(http[0]["span_id"])
        assert headers["x-datadog-sampling-priority"] == "1"
        assert headers["traceparent"].split("-")[1] == done.trace_id


def test_an_unsampled_execution_sends_its_trace_id_not_sampled(
    agent: TestAgent, statsd: StatsdListener, rhythm_worker_process: Any, rhythm_db: Any,
    rhythm_header_server: HeaderServer,
) -> None:
    start(agent, statsd, rhythm_worker_process, RHYTHM_TRACES_SAMPLE_RATE="0",
          RHYTHM_TRACES_SAMPLE_ERRORS="false")
    called = user_code.call_out(rhythm_db, rhythm_header_server)
    for done in called:
        headers = done.headers
        assert headers["x-datadog-trace-id"] == str(int(done.trace_id[16:], 16)), done.function
        assert headers["x-datadog-sampling-priority"] == "0"
        _, sent_trace, _, flags = headers["traceparent"].split("-")
        assert (sent_trace, flags) == (done.trace_id, "00")
    time.sleep(1.5)  # past ddtrace's writer interval
    # what ddtrace sends of those traces carries the decision to drop them
    assert not [s["name"] for d in called for s in in_trace(agent, d.trace_id) if kept(s)]


def test_workflow_body_spans_nest_under_their_pass_once(
    agent: TestAgent, statsd: StatsdListener, rhythm_worker_process: Any, rhythm_db: Any
) -> None:
    start(agent, statsd, rhythm_worker_process)
    execution_id, trace_id = user_code.run_workflow(rhythm_db)

    def arrived() -> Any:
        spans = in_trace(agent, trace_id)
        passes = of_execution(spans, "workflow.replay", execution_id)
        return len(passes) == 2 and any(s["name"] == "after-step" for s in spans)

    wait_until(arrived, "the passes and the application's spans")
    time.sleep(1.5)  # anything repeated would have arrived by now
    spans = in_trace(agent, trace_id)
    first, second = sorted(of_execution(spans, "workflow.replay", execution_id),
                           key=lambda s: s["start"])
    # each recorded once: on the pass that first ran it, under that pass (a replay's copy
    # is sent marked to be dropped)
    recorded = [(s["name"], s["parent_id"]) for s in spans
                if s["name"] in ("before-step", "after-step") and kept(s)]
    assert sorted(recorded) == [("after-step", second["span_id"]),
                                ("before-step", first["span_id"])]
