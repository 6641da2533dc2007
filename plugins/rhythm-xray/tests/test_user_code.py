"""The application's own X-Ray instrumentation inside tasks and workflows nests under the
execution's spans: over the wire, with the SDK's requests and psycopg patches, a loopback
HTTP server that keeps what it was sent, and the daemon stand-in in front of moto's X-Ray."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rhythm_core.testing import user_code
from rhythm_core.testing.failover import wait_until
from rhythm_core.testing.loopback import HeaderServer

from .conftest import xray_env
from .emf import EmfListener
from .xray import Daemon, MotoServer, entities, xray_id

APP = Path(__file__).parent / "apps" / "xray_app.py"


def start(daemon: Daemon, emf: EmfListener, spawn: Any, **extra: str) -> None:
    user_code.serve(spawn, xray_env(daemon.address, emf.endpoint, **extra), APP)


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
    for done in user_code.call_out(rhythm_db, rhythm_header_server):

        def arrived(done: user_code.CalledOut = done) -> Any:
            found = in_trace(moto, done.trace_id)
            invoke = of_execution(found, "function.invoke", done.execution_id)
            http = [e for e in found if "http" in e and e.get("namespace") == "remote"]
            query = [e for e in found if "sql" in e and not e["name"].startswith("db.")]
            return invoke and http and query and (invoke[0], http, query)

        invoke, http, query = wait_until(arrived, f"{done.function}: subsegments missing")
        assert [e["parent_id"] for e in http + query] == [invoke["id"]] * 2, done.function
        # the server downstream was sent the execution's trace, under the client subsegment
        assert done.headers["x-amzn-trace-id"] == (
            f"Root={xray_id(done.trace_id)};Parent={http[0]['id']};Sampled=1")
    assert not daemon.problems


def test_an_unsampled_execution_sends_its_trace_id_not_sampled(
    daemon: Daemon, emf: EmfListener, moto: MotoServer, rhythm_worker_process: Any,
    rhythm_db: Any, rhythm_header_server: HeaderServer,
) -> None:
    start(daemon, emf, rhythm_worker_process, RHYTHM_TRACES_SAMPLE_RATE="0",
          RHYTHM_TRACES_SAMPLE_ERRORS="false")
    called = user_code.call_out(rhythm_db, rhythm_header_server)
    for done in called:
        header = done.headers["x-amzn-trace-id"]
        fields = dict(part.split("=", 1) for part in header.split(";"))
        assert (fields["Root"], fields["Sampled"]) == (xray_id(done.trace_id), "0"), header
    time.sleep(1.0)
    wait_until(daemon.settled, "the daemon stand-in never settled")
    assert [e["name"] for d in called for e in in_trace(moto, d.trace_id)] == []


def test_workflow_body_subsegments_nest_under_their_pass_once(
    daemon: Daemon, emf: EmfListener, moto: MotoServer, rhythm_worker_process: Any,
    rhythm_db: Any,
) -> None:
    start(daemon, emf, rhythm_worker_process)
    execution_id, trace_id = user_code.run_workflow(rhythm_db)

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
