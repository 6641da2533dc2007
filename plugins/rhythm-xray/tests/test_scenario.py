"""The workflow scenario through X-Ray: an application segment (a web request, recorded with
aws-xray-sdk's own recorder) enqueues a workflow of three tasks, one retried; a worker is
SIGKILLed mid-task and replaced; X-Ray holds one trace whose root id maps from the rows'
``trace_id``, with the right parents and faults on the failed attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhythm_core import testing
from rhythm_core.testing import failover, scenario

from .conftest import xray_env
from .emf import EmfListener
from .xray import Daemon, MotoServer, Reader, core_id, entities, xray_id


def test_workflow_trace_survives_retry_and_failover(
    daemon: Daemon, emf: EmfListener, moto: MotoServer, reader: Reader,
    rhythm_worker_process: Any, rhythm_db: Any, tmp_path: Path,
) -> None:
    from aws_xray_sdk.core import xray_recorder

    marker = str(tmp_path / "release")
    enqueuing = testing.from_block({"provider": "xray", "traces": {
        "enabled": True, "sample_rate": 1.0, "endpoint": daemon.address}})
    testing.activate(enqueuing.start())
    try:
        # the application's own recorder, as a web framework's X-Ray middleware drives it
        xray_recorder.configure(daemon_address=daemon.address, sampling=False)
        web = xray_recorder.begin_segment("web")
        try:
            execution_id = scenario.three_tasks.queue(marker)
        finally:
            xray_recorder.end_segment()
        web_trace, web_span = core_id(web.trace_id), web.id
    finally:
        enqueuing.shutdown(5.0)
        testing.activate(testing.DISABLED)

    failover.drive(
        rhythm_worker_process, xray_env(daemon.address, emf.endpoint), marker, execution_id,
        lambda: failover.finished_work_sent(s.name for s in reader.spans(web_trace)),
    )
    spans = failover.wait_until(
        lambda: (found := reader.spans(web_trace)) and daemon.settled()
        and any(s.name == "web" for s in found) and found,
        "the application's segment never arrived")
    rows = failover.check(rhythm_db, spans, web_trace, web_span)

    # X-Ray's view: the trace id X-Ray files it under is the rows' trace id, and every
    # document of the trace says so
    documents = moto.documents(web_trace)
    assert {d["trace_id"] for d in documents} == {xray_id(web_trace)}
    everything = [e for d in documents for e in entities(d)]
    segments = [e for e in everything if e.get("type") != "subsegment"]
    executions = [e for e in segments if e["name"] == "rhythm-tests"]
    assert {e["id"] for e in executions} == {row[4] for row in rows.values()}
    for segment in executions:
        annotations = segment["annotations"]
        row = next(r for r in rows.values() if r[4] == segment["id"])
        assert annotations["rhythm_execution_id"] == row[0]
        assert annotations["rhythm_function"] == row[2]
        assert annotations["rhythm_queue"] == scenario.QUEUE
        assert annotations["rhythm_span"] == f"{row[1]}.{row[2]}"
    # the failed attempt is a fault with its exception as the cause
    flaky = rows[scenario.flaky_once.name]
    (failed,) = [e for e in everything if e["name"] == "function.invoke" and e.get("fault")]
    assert failed["parent_id"] == flaky[4]
    (cause,) = failed["cause"]["exceptions"]
    assert cause["type"] == "RuntimeError"
    assert cause["message"] == "first attempt fails on purpose"
    assert any(frame["label"] == "flaky_once" for frame in cause["stack"])
    # database calls are remote subsegments with their SQL block
    claims = [e for e in everything if e["name"] == "db.claim_execution"]
    assert claims and all(e["namespace"] == "remote" for e in claims)
    assert all(e["sql"]["database_type"] == "PostgreSQL" for e in claims)
    # metrics of the workers arrived as EMF documents
    assert "rhythm.executions.completed" in {n for d in emf.received() for n in d.names}
