"""Replay-based workflows: sequential and parallel children, failures, divergence."""

from __future__ import annotations

import pytest

import rhythm_core
from rhythm_core import ExecutionFailed, NotInWorkflow
from rhythm_core.testing import RecordingPlugin

from .apps import basic, workflows
from .conftest import runs


def children(db, parent_id: str) -> list[tuple]:
    return db.execute(
        "SELECT step, function_name, status, result FROM executions WHERE parent_id = %s "
        "ORDER BY step",
        (parent_id,),
    ).fetchall()


def test_sequential_and_parallel_children(start_worker, db) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.pipeline.queue(3)
    assert rhythm_core.wait(execution_id, timeout=20) == {"a": 6, "b": 12, "c": 14, "d": 52}
    steps = children(db, execution_id)
    # gather wrapped the two awaitables in tasks, which took positions 3 and 4
    assert [(s, r) for s, _, _, r in steps] == [([0], 6), ([1], 12), ([2], 14), ([5], 52)]
    assert all(status == "completed" for _, _, status, _ in steps)
    # each child ran exactly once although the workflow was replayed several times
    assert len(runs(db)) - sum(1 for r in runs(db) if r[1] == workflows.pipeline.name) == 4
    row = db.execute("SELECT replays FROM executions WHERE id = %s", (execution_id,)).fetchone()
    assert row is not None and row[0] >= 3


def test_is_replaying_is_true_only_over_recorded_steps(start_worker, db) -> None:
    start_worker(["wf", "wf-tasks"])
    rhythm_core.wait(workflows.pipeline.queue(1), timeout=20)
    notes = [r[4] for r in runs(db) if r[1] == workflows.pipeline.name]
    # the first pass has no history; every later pass starts by replaying
    assert notes[0] == "start replaying=False"
    starts = [n for n in notes if n.startswith("start")]
    afters = [n for n in notes if n.startswith("after-a")]
    assert starts == ["start replaying=False"] + ["start replaying=True"] * (len(starts) - 1)
    # on the second pass, step 0 is the last recorded step: replay ends after it
    assert afters[0] == "after-a replaying=False"
    # later passes have more recorded steps after step 0, so they are still replaying
    assert all(a == "after-a replaying=True" for a in afters[1:])


def test_many_children_awaited_together(start_worker, db) -> None:
    start_worker(["wf", "wf-tasks"], concurrency=20)
    execution_id = workflows.wide.queue(25)
    assert rhythm_core.wait(execution_id, timeout=20) == sum(2 * i for i in range(25))
    assert len(children(db, execution_id)) == 25


def test_concurrent_branches_with_several_steps_each(start_worker, db) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.branches.queue()
    assert rhythm_core.wait(execution_id, timeout=20) == [6, 42, 9, 402]
    steps = [(s, f.rsplit(".", 1)[1]) for s, f, _, _ in children(db, execution_id)]
    # positions in the workflow's own task: 0 triple's step, 1-3 the tasks gather made (the
    # third wraps triple's awaitable and takes no step), 4 the task group's task
    assert sorted(steps) == [
        ([0], "triple"),
        ([1, 0], "double"), ([1, 1], "double"),
        ([2, 0], "double"), ([2, 1], "double"),
        ([4, 0], "double"), ([4, 1], "double"),
    ]


def test_child_failure_can_be_caught(start_worker, db) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.catches.queue()
    result = rhythm_core.wait(execution_id, timeout=20)
    assert result == "caught ValueError: expected failure; then 42"
    assert [status for _, _, status, _ in children(db, execution_id)] == ["failed", "completed"]


def test_uncaught_child_failure_fails_the_parent(start_worker) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.does_not_catch.queue()
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=20)
    assert raised.value.error_type == "ExecutionFailed"
    assert "unhandled failure" in raised.value.error_message
    assert rhythm_core.get_execution(execution_id).status == "failed"


def test_replay_divergence_fails_with_the_step(start_worker) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.changes_its_mind.queue()
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=20)
    assert raised.value.error_type == "ReplayDivergence"
    message = raised.value.error_message
    assert "at step 0" in message
    assert workflows.double.name in message and workflows.triple.name in message


def test_replay_that_skips_a_recorded_step_fails(start_worker) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.skips_its_step_on_replay.queue()
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=20)
    assert raised.value.error_type == "ReplayDivergence"
    assert "returned without reaching recorded step(s) 0" in raised.value.error_message


def test_workflow_as_a_child_of_a_workflow(start_worker, db) -> None:
    start_worker(["wf", "wf-tasks"])
    execution_id = workflows.nested.queue(1)
    assert rhythm_core.wait(execution_id, timeout=20) == 21
    (child,) = children(db, execution_id)
    assert child[1] == workflows.pipeline.name


@pytest.mark.parametrize("metrics_only", [False, True], ids=["off", "metrics-only"])
def test_with_tracing_off_a_workflow_tree_shares_its_trace_id(
    start_worker, db, metrics_only
) -> None:
    """A worker that does not trace reads only a workflow's trace id at claim (a task's
    none): the children and grandchildren still join the root's trace, each with a span id
    of its own."""
    observability = None
    if metrics_only:
        observability = {"plugins": [RecordingPlugin()], "traces": {"enabled": False},
                         "metrics": {"enabled": True}}
    start_worker(["wf", "wf-tasks"], observability=observability)
    execution_id = workflows.nested.queue(1)
    assert rhythm_core.wait(execution_id, timeout=20) == 21
    rows = db.execute(
        "WITH RECURSIVE tree AS (SELECT id, trace_id, span_id, type FROM executions"
        " WHERE id = %s UNION ALL SELECT e.id, e.trace_id, e.span_id, e.type"
        " FROM executions e JOIN tree ON e.parent_id = tree.id) SELECT * FROM tree",
        (execution_id,),
    ).fetchall()
    assert {kind for *_, kind in rows} == {"workflow", "task"} and len(rows) > 3
    assert {trace_id for _, trace_id, _, _ in rows} == {execution_id.replace("-", "")}
    assert len({span_id for _, _, span_id, _ in rows}) == len(rows)


def test_run_outside_a_workflow_is_refused() -> None:
    with pytest.raises(NotInWorkflow, match=r"add\.queue"):
        basic.add.run(1, 2)


def test_a_malformed_trace_id_in_the_parent_row_is_not_handed_to_children(
    start_worker, db
) -> None:
    """Observability off: children take the workflow row's trace id, unless it is not a trace
    id (written by hand, say); then each child starts a trace of its own."""
    execution_id = workflows.wide.queue(3)
    db.execute("UPDATE executions SET trace_id = 'not,a,trace' WHERE id = %s", (execution_id,))
    start_worker(["wf", "wf-tasks"])
    assert rhythm_core.wait(execution_id, timeout=20) == 6
    rows = db.execute("SELECT id::text, trace_id FROM executions WHERE parent_id = %s",
                      (execution_id,)).fetchall()
    assert len(rows) == 3
    assert all(trace_id == child.replace("-", "") for child, trace_id in rows), rows
