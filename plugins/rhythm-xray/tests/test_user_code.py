"""The application's own X-Ray instrumentation inside tasks and workflows nests under the
execution's spans: over the wire, with the SDK's requests and psycopg patches, a loopback
HTTP server that keeps what it was sent, and the daemon stand-in in front of moto's X-Ray."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import rhythm_core
from rhythm_core.testing import user_code
from rhythm_core.testing.failover import wait_until
from rhythm_core.testing.loopback import HeaderServer

from .conftest import xray_env
from .emf import EmfListener
from .xray import Daemon, MotoServer, entities, xray_id

APPS = Path(__file__).parent / "apps"


def start(daemon: Daemon, emf: EmfListener, spawn: Any, **extra: str) -> None:
    env = xray_env(
        daemon.address, emf.endpoint,
        PYTHONPATH=os.pathsep.join([str(APPS), os.environ.get("PYTHONPATH", "")]),
        **extra,
    )
    spawn(env, modules=["xray_app"], queues=[user_code.QUEUE])


def trace_of(db: Any, execution_id: str) -> str:
    (trace_id,) = db.execute(
        "SELECT trace_id FROM executions WHERE id = %s", (execution_id,)
    ).fetchone()
    return str(trace_id)


def in_trace(moto: MotoServer, trace_id: str) -> list[dict[str, Any]]:
    return [e for document in moto.documents(trace_id) for e in entities(document)]


def of_execution(found: list[dict[str, Any]], name: str, execution_id: str) -> list[Any]:
    return [e for e in found if e["name"] == name
            and e.get("metadata", {}).get("rhythm", {}).get("rhythm.execution_id") == execution_id]


def test_http_and_query_subsegments_are_children_of_the_attempt(
    daemon: Daemon, emf: EmfListener, moto: MotoServer, rhythm_worker_process: Any,
    rhythm_db: Any, rhythm_header_server: HeaderServer,
) -> None:
    start(daemon, emf, rhythm_worker_process)
    for function in (user_code.calls_out, user_code.calls_out_async):
        sent = len(rhythm_header_server.received)
        execution_id = function.queue(rhythm_header_server.url)
        assert rhythm_core.wait(execution_id, timeout=30) == 200
        trace_id = trace_of(rhythm_db, execution_id)

        def arrived(trace_id: str = trace_id, execution_id: str = execution_id) -> Any:
            found = in_trace(moto, trace_id)
            invoke = of_execution(found, "function.invoke", execution_id)
            http = [e for e in found if "http" in e and e.get("namespace") == "remote"]
            query = [e for e in found if "sql" in e and not e["name"].startswith("db.")]
            return invoke and http and query and (invoke[0], http, query)

        invoke, http, query = wait_until(arrived, f"{function.name}: subsegments missing")
        assert [e["parent_id"] for e in http + query] == [invoke["id"]] * 2, function.name
        # the server downstream was sent the execution's trace, under the client subsegment
        (headers,) = rhythm_header_server.received[sent:]
        assert headers["x-amzn-trace-id"] == (
            f"Root={xray_id(trace_id)};Parent={http[0]['id']};Sampled=1")
    assert not daemon.problems


def test_an_unsampled_execution_sends_its_trace_id_not_sampled(
    daemon: Daemon, emf: EmfListener, moto: MotoServer, rhythm_worker_process: Any,
    rhythm_db: Any, rhythm_header_server: HeaderServer,
) -> None:
    start(daemon, emf, rhythm_worker_process, RHYTHM_TRACES_SAMPLE_RATE="0",
          RHYTHM_TRACES_SAMPLE_ERRORS="false")
    traces = []
    for function in (user_code.calls_out, user_code.calls_out_async):
        sent = len(rhythm_header_server.received)
        execution_id = function.queue(rhythm_header_server.url)
        assert rhythm_core.wait(execution_id, timeout=30) == 200
        trace_id = trace_of(rhythm_db, execution_id)
        traces.append(trace_id)
        (headers,) = rhythm_header_server.received[sent:]
        fields = dict(part.split("=", 1) for part in headers["x-amzn-trace-id"].split(";"))
        assert (fields["Root"], fields["Sampled"]) == (xray_id(trace_id), "0"), function.name
    time.sleep(1.0)
    wait_until(daemon.settled, "the daemon stand-in never settled")
    assert [e["name"] for t in traces for e in in_trace(moto, t)] == []


def test_workflow_body_subsegments_nest_under_their_pass_once(
    daemon: Daemon, emf: EmfListener, moto: MotoServer, rhythm_worker_process: Any,
    rhythm_db: Any,
) -> None:
    start(daemon, emf, rhythm_worker_process)
    execution_id = user_code.opens_around_a_step.queue(1)
    assert rhythm_core.wait(execution_id, timeout=30) == 2
    trace_id = trace_of(rhythm_db, execution_id)

    def arrived() -> Any:
        found = in_trace(moto, trace_id)
        passes = of_execution(found, "workflow.replay", execution_id)
        return len(passes) == 2 and any(e["name"] == "after-step" for e in found)

    wait_until(arrived, "the passes and the application's subsegments")
    time.sleep(1.0)
    wait_until(daemon.settled, "the daemon stand-in never settled")
    found = in_trace(moto, trace_id)
    first, second = sorted(of_execution(found, "workflow.replay", execution_id),
                           key=lambda e: e["start_time"])
    assert [e["parent_id"] for e in found if e["name"] == "before-step"] == [first["id"]]
    assert [e["parent_id"] for e in found if e["name"] == "after-step"] == [second["id"]]
