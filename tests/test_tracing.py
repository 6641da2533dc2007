"""One trace from an application span through a workflow to every task, across a retry and
a SIGKILL failover, with the ids the database holds."""

from __future__ import annotations

import signal
from collections import Counter
from typing import Any

import rhythm_core
from rhythm_core import trace

from .apps import traced
from .apps.basic import hold_until
from .conftest import runs, wait_until
from .telemetry_files import jsonl_block, jsonl_env, read


def operations(metrics: list[dict[str, Any]]) -> set[str]:
    """The statements timed by ``rhythm.db.query.duration``."""
    return {m["attributes"].get("operation") for m in metrics
            if m["name"] == "rhythm.db.query.duration"}


def test_workflow_trace_survives_retry_and_failover(spawn_worker, observe, db, tmp_path) -> None:
    telemetry = tmp_path / "telemetry"
    telemetry.mkdir()
    marker = tmp_path / "release"
    observe(jsonl_block(telemetry))
    with trace.span("web.request", route="/orders") as web:
        execution_id = traced.three_tasks.queue(str(marker))
    assert web is not None

    env = jsonl_env(telemetry)
    first = spawn_worker("tests.apps.traced", "traced", "traced-wf", "hold", env=env)
    wait_until(lambda: runs(db, "start"), message="the held task never started")
    # metric points go out a quarter of a second apart or at an idle poll: a SIGKILL loses
    # those gathered since, as a crash would, so the kill waits for the suspended passes'
    wait_until(lambda: "suspend" in operations(read(telemetry)[1]),
               message="the first worker's suspended passes were never timed")
    first.signal(signal.SIGKILL)
    first.wait()
    second = spawn_worker("tests.apps.traced", "traced", "traced-wf", "hold", env=env)
    marker.touch()
    assert rhythm_core.wait(execution_id, timeout=30) == [10, 200, "released"]
    second.signal(signal.SIGTERM)
    assert second.wait() == 0

    rows = db.execute(
        "SELECT id::text, type, function_name, trace_id, span_id, trace_context, parent_id::text "
        "FROM executions ORDER BY created_at"
    ).fetchall()
    everything, metrics = read(telemetry)
    # the dead-worker check that recovered the held task is a trace of its own
    (detect,) = [s for s in everything if s["name"] == "worker.detect_dead_workers"]
    assert detect["attributes"]["reassigned_count"] >= 1
    assert detect["parent_span_id"] is None
    spans = [s for s in everything if s is not detect]
    by_id = {s["span_id"]: s for s in spans}

    # one trace: the application's, in every row and every span
    assert {r[3] for r in rows} == {web.trace_id}
    assert {s["trace_id"] for s in spans} == {web.trace_id}

    # every execution has exactly one execution span, whose ids are the row's
    for row_id, kind, function, _, span_id, carrier, parent_id in rows:
        named = [s for s in spans if s["name"] == f"{kind}.{function}"]
        assert [s["span_id"] for s in named] == [span_id], function
        execution_span = named[0]
        assert execution_span["attributes"]["rhythm.execution_id"] == row_id
        # its parent is the span that created it, as written in the row's carrier
        creator = by_id[execution_span["parent_span_id"]]
        assert creator["name"] == "db.create_execution"
        assert carrier["traceparent"].split("-")[2] == creator["span_id"]
        assert carrier["x-jsonl-created-by"] == creator["span_id"]
        if parent_id is None:  # the workflow: created under the web request
            assert creator["parent_span_id"] == web.span_id
        else:  # a child: created by a pass of its workflow
            assert by_id[creator["parent_span_id"]]["name"] == "workflow.replay"

    held_row = next(r for r in rows if r[2] == hold_until.name)
    flaky_row = next(r for r in rows if r[2] == traced.flaky_once.name)
    # the killed worker's attempt left no spans; the second worker continued the same
    # execution span id
    held_invokes = [s for s in spans if s["name"] == "function.invoke"
                    and s["parent_span_id"] == held_row[4]]
    assert len(held_invokes) == 1 and held_invokes[0]["status"] == "ok"
    starts = runs(db, "start")
    assert len(starts) == 2 and starts[0][3] != starts[1][3]
    # the retried task: two attempts under one execution span, the first an error
    flaky_invokes = sorted((s for s in spans if s["name"] == "function.invoke"
                            and s["parent_span_id"] == flaky_row[4]),
                           key=lambda s: s["attributes"]["rhythm.attempt"])
    assert [s["status"] for s in flaky_invokes] == ["error", "ok"]
    assert flaky_invokes[0]["error_type"] == "RuntimeError"

    # every span hangs off a span of the trace (or is the web request, its root)
    for span in spans:
        assert span["span_id"] == web.span_id or span["parent_span_id"] in by_id, span["name"]
    # semantic-convention attributes beside the reference's own
    claim = next(s for s in spans if s["name"] == "db.claim_execution")
    assert claim["attributes"]["messaging.system"] == "rhythm"
    assert claim["attributes"]["db.system.name"] == "postgresql"
    assert claim["attributes"]["queue_name"] == claim["attributes"]["messaging.destination.name"]
    # replays repeat no span: the body span once, one replay span per pass
    names = Counter(s["name"] for s in spans)
    assert names["workflow.body"] == 1
    assert names["plain.inner"] == 1
    replays = db.execute("SELECT replays FROM executions WHERE id = %s",
                         (execution_id,)).fetchone()
    assert replays is not None
    # a pass interrupted by the SIGKILL would leave none; each finished pass leaves one
    assert 1 <= names["workflow.replay"] <= replays[0]

    metric_names = {m["name"] for m in metrics}
    for expected in ("rhythm.executions.claimed", "rhythm.executions.completed",
                     "rhythm.executions.created", "rhythm.workflow.replays",
                     "rhythm.execution.duration", "rhythm.claim_loop.duration",
                     "rhythm.db.query.duration", "rhythm.function.execution.duration",
                     "rhythm.serialization.duration", "test.plain.calls"):
        assert expected in metric_names, expected
    # statements are timed by operation; a workflow pass that suspends has its own
    assert {"create", "claim", "report", "suspend"} <= operations(metrics)
    # the workflow's passes: each a function duration of the workflow
    workflow_passes = [m for m in metrics if m["name"] == "rhythm.function.execution.duration"
                       and m["attributes"].get("execution_type") == "workflow"]
    assert workflow_passes
