"""Worker processes: SIGKILL failover, concurrent claiming, graceful shutdown."""

from __future__ import annotations

import signal
import time

import pytest

import rhythm_core

from .apps import basic, workflows
from .conftest import runs, wait_until


def statuses(db) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall())


def test_sigkilled_worker_task_is_completed_once_by_another(spawn_worker, db, tmp_path) -> None:
    marker = tmp_path / "release"
    first = spawn_worker("tests.apps.basic", "hold")
    execution_id = basic.hold_until.queue(str(marker))
    wait_until(lambda: runs(db, "start"), message="the task never started")
    first.signal(signal.SIGKILL)
    first.wait()

    second = spawn_worker("tests.apps.basic", "hold")
    marker.touch()
    assert rhythm_core.wait(execution_id, timeout=20) == "released"

    starts, ends = runs(db, "start"), runs(db, "end")
    assert len(starts) == 2 and starts[0][3] != starts[1][3]  # ran on two workers
    assert len(ends) == 1 and ends[0][3] == starts[1][3]  # completed once, by the second
    row = db.execute(
        "SELECT status, attempt, lease, worker_id FROM executions WHERE id = %s", (execution_id,)
    ).fetchone()
    assert row == ("completed", 1, 2, ends[0][3])  # failover does not use up a retry
    dead = db.execute(
        "SELECT status FROM worker_heartbeats WHERE worker_id = %s", (starts[0][3],)
    ).fetchone()
    assert dead == ("dead",)
    assert second.proc.poll() is None


def test_recovered_workflow_does_not_create_its_children_twice(spawn_worker, db, tmp_path) -> None:
    marker = tmp_path / "release"
    first = spawn_worker("tests.apps.workflows", "hold", "wf-tasks")
    execution_id = workflows.holding_workflow.queue(str(marker))
    wait_until(lambda: runs(db, "start"), message="the held child never started")
    first.signal(signal.SIGKILL)
    first.wait()
    spawn_worker("tests.apps.workflows", "hold", "wf-tasks")
    marker.touch()
    assert rhythm_core.wait(execution_id, timeout=20) == "10 released"
    per_step = db.execute(
        "SELECT step, count(*) FROM executions WHERE parent_id = %s GROUP BY step ORDER BY step",
        (execution_id,),
    ).fetchall()
    assert per_step == [([0], 1), ([1], 1)]
    assert len(runs(db, "end")) == 1


def test_two_workers_share_2000_executions_without_duplicates(spawn_worker, db) -> None:
    total = 2000
    ids = basic.bulk_item.queue_many([(i,) for i in range(total)])
    workers = [
        spawn_worker("tests.apps.basic", "bulk", extra=["--concurrency", "25"]) for _ in range(2)
    ]
    wait_until(
        lambda: statuses(db).get("completed") == total,
        timeout=90,
        message=f"not all completed: {statuses(db)}",
    )
    done = runs(db)
    assert len(done) == total  # none ran twice
    assert {r[0] for r in done} == set(ids)  # none lost
    by_worker = {r[3] for r in done}
    assert len(by_worker) == 2, "both workers should have claimed work"
    results = db.execute("SELECT sum((result)::int) FROM executions").fetchone()
    assert results == (sum(range(total)),)
    assert all(w.proc.poll() is None for w in workers)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_finishes_running_work_and_loses_nothing(spawn_worker, db, sig) -> None:
    ids = basic.sleeper.queue_many([(0.4,)] * 20)
    worker = spawn_worker("tests.apps.basic", "slow", extra=["--concurrency", "4"])
    wait_until(lambda: len(runs(db, "start")) >= 4, message="no work started")
    worker.signal(sig)
    assert worker.wait(timeout=20) == 0, worker.output()

    started = {r[0] for r in runs(db, "start")}
    ended = {r[0] for r in runs(db, "end")}
    assert started == ended  # whatever was running when the signal came, finished
    counts = statuses(db)
    assert "running" not in counts
    assert counts.get("completed", 0) == len(ended)
    assert counts.get("completed", 0) + counts.get("pending", 0) == len(ids)
    heartbeat = db.execute("SELECT status FROM worker_heartbeats").fetchall()
    assert heartbeat == [("stopped",)]

    spawn_worker("tests.apps.basic", "slow", extra=["--concurrency", "10"])
    wait_until(lambda: statuses(db).get("completed") == len(ids), timeout=30)
    assert len(runs(db, "end")) == len(ids)  # nothing ran twice


def test_sigterm_releases_what_outlives_the_shutdown_timeout(spawn_worker, db) -> None:
    ids = basic.sleeper.queue_many([(30,)] * 3)
    worker = spawn_worker(
        "tests.apps.basic", "slow", extra=["--concurrency", "3", "--shutdown-timeout", "0.3"]
    )
    wait_until(lambda: len(runs(db, "start")) == 3, message="work did not start")
    began = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0, worker.output()
    assert time.monotonic() - began < 10
    rows = db.execute(
        "SELECT status, attempt, worker_id FROM executions WHERE id = ANY(%s::uuid[])", (ids,)
    ).fetchall()
    assert rows == [("pending", 1, None)] * 3
    assert "releasing 3 execution(s)" in worker.output()
