"""The ``rhythm`` command: migrate, status, demo, and the embedded database default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rhythm_core
from rhythm_core import tree
from rhythm_core.ids import execution_id_of
from rhythm_core.testing.failover import wait_until

from .apps import basic
from .conftest import ROOT


def rhythm(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "rhythm_core", *args],
        cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True, timeout=timeout,
    )


def test_migrate_is_idempotent() -> None:
    done = rhythm("migrate")
    assert done.returncode == 0, done.stderr
    assert "none (up to date)" in done.stdout


def test_status_shows_queue_depths_and_workers(start_worker) -> None:
    basic.add.queue_many([(1, 1)] * 3)
    done = rhythm("status")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("basic"))
    assert line.split()[1:] == ["3", "0", "0", "0", "0", "0"]
    assert "active workers: 0" in done.stdout
    start_worker("other")
    assert "active workers: 1" in rhythm("status").stdout


def test_status_of_one_execution_draws_its_tree(start_worker) -> None:
    start_worker("basic")
    execution_id = basic.flaky.queue(1)
    rhythm_core.wait(execution_id, timeout=15)
    done = rhythm("status", execution_id)
    assert done.returncode == 0, done.stderr
    assert "task tests.apps.basic.flaky  completed  attempts 2" in done.stdout
    assert "retried after RuntimeError" in done.stdout
    assert "result: 2" in done.stdout


def test_status_of_unknown_execution_is_a_clear_error() -> None:
    done = rhythm("status", "1234")
    assert done.returncode == 2
    assert done.stderr.strip() == "rhythm: error: '1234' is not an execution id (a UUID)"


def test_demo_runs_a_workflow_and_prints_its_tree() -> None:
    done = rhythm("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "workflow rhythm_core.demo.process_order  completed" in out
    assert out.count("task rhythm_core.demo.reserve_item") == 3
    charge = next(x for x in out.splitlines() if "charge_card" in x)
    assert "completed  attempts 2" in charge and "retried after ConnectionError" in charge
    assert "'receipt': 'receipt for order-1001 (ch_order-1001) sent'" in out
    # the trace: the request span parents the workflow, failures are marked, ids are the rows'
    trace_line = next(x for x in out.splitlines() if x.startswith("trace "))
    trace_id = trace_line.split()[1].rstrip(":")
    assert len(trace_id) == 32
    spans = out.split(trace_line, 1)[1]
    assert spans.lstrip().startswith("demo.checkout_request")
    assert "└─ workflow.rhythm_core.demo.process_order" in spans
    assert spans.count("function.invoke") == 7  # six tasks, one of them twice
    assert "ERROR ConnectionError" in spans
    assert "rhythm.executions.completed = 7" in out


def test_embedded_postgres_is_used_when_no_url_is_set(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RHYTHM_DATABASE_URL"}
    env["RHYTHM_EMBEDDED_DIR"] = str(tmp_path / "pgdata")
    done = rhythm("migrate", env=env)
    assert done.returncode == 0, done.stderr
    assert "using the embedded PostgreSQL in" in done.stderr
    assert str(tmp_path / "pgdata") in done.stderr
    assert "applied 1" in done.stdout
    again = rhythm("migrate", env=env)
    assert "none (up to date)" in again.stdout


def test_worker_with_a_missing_module_names_it() -> None:
    done = rhythm("worker", "-m", "no_such_package.tasks", "-q", "x")
    assert done.returncode == 2
    assert done.stderr.strip().startswith(
        "rhythm: error: cannot import module 'no_such_package.tasks'"
    )
    assert "Traceback" not in done.stderr


def test_trace_draws_a_trace_from_the_database_alone(start_worker, db) -> None:
    from .apps import workflows

    start_worker(["wf", "wf-tasks"])  # observability off: the ids are in the rows anyway
    execution_id = workflows.pipeline.queue(2)
    rhythm_core.wait(execution_id, timeout=20)
    (trace_id,) = db.execute("SELECT trace_id FROM executions WHERE id = %s",
                             (execution_id,)).fetchone()
    by_execution = rhythm("trace", execution_id)
    by_trace = rhythm("trace", trace_id)
    assert by_execution.returncode == 0, by_execution.stderr
    assert by_execution.stdout == by_trace.stdout
    lines = by_trace.stdout.splitlines()
    assert lines[0] == f"trace {trace_id}: 5 execution(s)"
    assert lines[1].startswith("workflow tests.apps.workflows.pipeline  completed")
    assert sum(1 for x in lines if "task tests.apps.workflows.double" in x) == 4
    assert all("|" in x for x in lines[1:])  # the waterfall bars
    missing = rhythm("trace", "0" * 31 + "1")
    assert missing.returncode == 2
    assert "no execution belongs to trace" in missing.stderr


def test_trace_finds_roots_that_share_an_application_trace(observe, db) -> None:
    """A root that starts its own trace is found by its id (it is left out of the trace index);
    roots enqueued under an application span are found through the index."""
    from rhythm_core import trace
    from rhythm_core.testing import RecordingPlugin

    alone = basic.add.queue(1, 2)
    observe({"plugins": [RecordingPlugin()], "traces": {"enabled": True, "sample_rate": 1.0}})
    with trace.span("web.request") as web:
        shared = basic.add.queue_many([(1, 1), (2, 2)])
    assert web is not None
    rows = dict(db.execute("SELECT id::text, trace_id FROM executions").fetchall())
    assert rows[alone] == alone.replace("-", "")
    assert {rows[x] for x in shared} == {web.trace_id}
    assert all(x.replace("-", "") != web.trace_id for x in shared)
    indexed = db.execute(
        "SELECT count(*) FROM executions WHERE trace_id <> translate(id::text, '-', '')"
    ).fetchone()[0]
    assert indexed == 2
    db.execute("SET enable_seqscan = off")  # a table this small would be scanned whole
    plan = "\n".join(r[0] for r in db.execute("EXPLAIN " + tree.TRACE, {
        "uuid": execution_id_of(web.trace_id), "trace": web.trace_id}))
    db.execute("RESET enable_seqscan")
    assert "executions_shared_trace" in plan and "executions_pkey" in plan
    assert f"trace {web.trace_id}: 2 execution(s)" in rhythm("trace", web.trace_id).stdout
    assert f"trace {rows[alone]}: 1 execution(s)" in rhythm("trace", rows[alone]).stdout


def test_status_of_a_failure_shows_its_traceback_and_a_workflows_children(start_worker) -> None:
    from .apps import workflows

    start_worker(["basic", "wf", "wf-tasks"])
    failed = basic.always_fails.queue()
    with pytest.raises(rhythm_core.ExecutionFailed):
        rhythm_core.wait(failed, timeout=15)
    done = rhythm("status", failed)
    assert "error: ValueError: boom" in done.stdout
    assert "Traceback (most recent call last)" in done.stdout
    assert "in always_fails" in done.stdout

    parent = workflows.pipeline.queue(3)
    rhythm_core.wait(parent, timeout=20)
    shown = rhythm("status", parent).stdout
    children = rhythm_core.get_execution(parent)
    child_ids = [line.split()[1] for line in shown.splitlines() if line.startswith("child ")]
    assert len(child_ids) >= 2 and children.id not in child_ids
    assert all(rhythm_core.get_execution(c).parent_id == parent for c in child_ids)


def test_a_worker_logs_each_failed_attempt_once(spawn_worker) -> None:
    worker = spawn_worker("tests.apps.basic", "basic")
    failed = basic.always_fails.queue()  # retries=1: two attempts
    with pytest.raises(rhythm_core.ExecutionFailed):
        rhythm_core.wait(failed, timeout=15)
    wait_until(lambda: "failed for good" in worker.output(), message="no final failure line")
    out = worker.output()
    retry = [line for line in out.splitlines() if "failed on attempt" in line]
    assert len(retry) == 1 and " WARNING " in retry[0] and failed in retry[0]
    assert "tests.apps.basic.always_fails" in retry[0] and "attempt 1 of 2" in retry[0]
    assert "ValueError: boom" in retry[0] and "retrying in" in retry[0]
    final = [line for line in out.splitlines() if "failed for good" in line]
    assert len(final) == 1 and " ERROR " in final[0] and "attempt 2 of 2" in final[0]
    assert "Traceback (most recent call last)" in out.split(final[0], 1)[1]


def test_the_start_up_line_and_the_mistakes_it_warns_of(spawn_worker) -> None:
    worker = spawn_worker("tests.apps.basic", "not-basic",
                          env={"RHYTHM_TRACING_ENABLE": "true", "RHYTHM_NONSENSE_XYZ": "1"})
    wait_until(lambda: "add -q" in worker.output(), message="no queue hint")
    out = worker.output()
    assert "claiming from not-basic (concurrency" in out and "; observability off" in out
    assert ("RHYTHM_TRACING_ENABLE is not a variable rhythm reads (ignored); did you mean "
            "RHYTHM_TRACING_ENABLED?") in out
    assert "RHYTHM_NONSENSE_XYZ is not a variable rhythm reads (ignored)\n" in out
    # the loaded module's functions run on queues this worker does not claim from
    for queue in ("basic", "bulk", "slow", "hold"):
        assert f"which this worker does not claim from; add -q {queue} " in out, queue


def test_the_start_up_line_says_what_observability_does(spawn_worker, tmp_path) -> None:
    env = {"RHYTHM_TRACING_ENABLED": "true", "RHYTHM_TRACES_SAMPLE_RATE": "0.25",
           "RHYTHM_OBSERVABILITY_PROVIDER": "jsonl",
           "RHYTHM_TRACING_ENDPOINT": "http://user:hunter2@collector:4318/v1?token=abc",
           "RHYTHM_JSONL_PATH": str(tmp_path / "t-{pid}.jsonl")}
    worker = spawn_worker("tests.apps.basic", "basic", env=env)
    out = worker.output()
    assert ("observability via jsonl; traces on (sample rate 0.25, failed ones kept, to "
            "http://user:***@collector:4318/v1?***); metrics off") in out
    assert "hunter2" not in out and "token=abc" not in out
