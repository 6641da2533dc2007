"""Tasks end to end against a real PostgreSQL: enqueue, claim, complete, retry, fail, time out."""

from __future__ import annotations

import asyncio

import pytest

import rhythm_core
from rhythm_core import ExecutionFailed, ExecutionNotFound, ExecutionTimeout

from .apps import basic
from .conftest import runs, wait_until


def test_sync_and_async_tasks_complete(start_worker, db) -> None:
    start_worker("basic")
    first = basic.add.queue(2, 3)
    second = basic.greet.queue("ada", punctuation="?")
    assert rhythm_core.wait(first, timeout=10) == 5
    assert rhythm_core.wait(second, timeout=10) == "hello ada?"
    execution = rhythm_core.get_execution(first)
    assert execution.status == "completed"
    assert execution.attempt == 1
    assert execution.args == [2, 3]
    assert execution.claimed_at is not None and execution.completed_at is not None
    assert execution.created_at <= execution.claimed_at <= execution.completed_at
    assert sorted(r[1] for r in runs(db)) == sorted([basic.add.name, basic.greet.name])


def test_queue_async_and_wait_async(start_worker) -> None:
    start_worker("basic")

    async def main() -> int:
        execution_id = await basic.add.queue_async(20, 22)
        return await rhythm_core.wait_async(execution_id, timeout=10)

    assert asyncio.run(main()) == 42


def test_queue_many_writes_all_in_one_call(start_worker, db) -> None:
    ids = basic.add.queue_many([(1, 2), ((3,), {"b": 4}), (5, 6)])
    assert len(set(ids)) == 3
    assert db.execute("SELECT count(*) FROM executions WHERE status = 'pending'").fetchone() == (3,)
    start_worker("basic")
    assert [rhythm_core.wait(i, timeout=10) for i in ids] == [3, 7, 11]


def test_retry_applies_exponential_backoff_then_succeeds(start_worker, db) -> None:
    start_worker("basic")
    execution_id = basic.flaky.queue(2)
    assert rhythm_core.wait(execution_id, timeout=15) == 3
    times = [row[5] for row in runs(db)]
    assert [row[2] for row in runs(db)] == [1, 2, 3]
    first_gap = (times[1] - times[0]).total_seconds()
    second_gap = (times[2] - times[1]).total_seconds()
    assert first_gap >= 0.3, first_gap  # retry_backoff * 2**0
    assert second_gap >= 0.6, second_gap  # retry_backoff * 2**1
    execution = rhythm_core.get_execution(execution_id)
    assert execution.attempt == 3
    assert execution.error is not None and execution.error["type"] == "RuntimeError"


def test_final_failure_records_the_error(start_worker, db) -> None:
    start_worker("basic")
    execution_id = basic.always_fails.queue()
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=10)
    assert raised.value.error_type == "ValueError"
    assert raised.value.error_message == "boom"
    execution = rhythm_core.get_execution(execution_id)
    assert execution.status == "failed"
    assert execution.attempt == 2  # the first attempt and one retry
    assert execution.error is not None
    assert "raise ValueError" in execution.error["traceback"]
    assert len(runs(db)) == 2


@pytest.mark.parametrize("fn", [basic.slow_async, basic.slow_sync], ids=["async", "sync"])
def test_timeout_fails_the_attempt(start_worker, fn) -> None:
    start_worker("basic")
    execution_id = fn.queue(3)
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=10)
    assert raised.value.error_type == ExecutionTimeout.__name__
    assert "timeout of 0.3s" in raised.value.error_message
    quick = fn.queue(0.01)
    assert rhythm_core.wait(quick, timeout=10) == "finished"


def test_unserialisable_result_fails_without_retrying(start_worker) -> None:
    start_worker("basic")
    execution_id = basic.returns_unserialisable.queue()
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=10)
    assert raised.value.error_type == "SerializationError"
    assert "the result of" in raised.value.error_message
    assert rhythm_core.get_execution(execution_id).attempt == 1


def test_cancel_pending_and_running(start_worker, db, tmp_path) -> None:
    pending = basic.add.queue(1, 1)
    assert rhythm_core.cancel(pending) == 1
    assert rhythm_core.get_execution(pending).status == "cancelled"
    assert rhythm_core.cancel(pending) == 0  # already final

    start_worker(["basic", "hold"])
    running = basic.hold_until.queue(str(tmp_path / "never"))
    wait_until(lambda: runs(db, "start"), message="hold_until never started")
    assert rhythm_core.cancel(running) == 1
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(running, timeout=5)
    assert raised.value.status == "cancelled"
    # the worker stopped the cancelled function and keeps working
    assert rhythm_core.wait(basic.add.queue(2, 2), timeout=10) == 4
    assert runs(db, "end") == []


def test_unknown_ids_are_named() -> None:
    with pytest.raises(ExecutionNotFound, match="not-a-uuid"):
        rhythm_core.get_execution("not-a-uuid")
    with pytest.raises(ExecutionNotFound, match="no execution has id"):
        rhythm_core.get_execution("00000000-0000-0000-0000-000000000000")


def test_wait_times_out_on_unfinished_execution() -> None:
    execution_id = basic.add.queue(1, 2)  # no worker runs it
    with pytest.raises(TimeoutError, match="still pending"):
        rhythm_core.wait(execution_id, timeout=0.2)


def test_a_task_is_still_a_plain_function() -> None:
    assert basic.slow_sync(0) == "finished"
    assert basic.add.name == "tests.apps.basic.add"
    assert repr(basic.add) == "<task tests.apps.basic.add queue='basic'>"


def test_every_row_of_a_batch_gets_its_own_ids(db) -> None:
    """Observability off: each row starts its own trace (trace id = its id, hex) with a span
    id of its own, as the insert splits the batch's ids back into rows."""
    ids = basic.add.queue_many([(n, n) for n in range(40)])
    rows = db.execute(
        "SELECT id::text, trace_id, span_id FROM executions WHERE id = ANY(%s::uuid[])", (ids,)
    ).fetchall()
    assert len(rows) == 40
    for execution_id, trace_id, span_id in rows:
        assert trace_id == execution_id.replace("-", "")
        assert len(span_id) == 16 and int(span_id, 16) != 0
    assert len({span_id for _, _, span_id in rows}) == 40


def test_a_row_without_ids_stores_nulls(db) -> None:
    from rhythm_core import store
    from rhythm_core.ids import new_execution_id, new_span_id, new_trace_id

    def row(trace_id, span_id) -> store.NewExecution:
        return store.NewExecution("task", basic.add.name, "basic", "[1, 1]", "{}", 0, None,
                                  id=new_execution_id(), trace_id=trace_id, span_id=span_id)

    batch = [row(new_trace_id(), new_span_id()), row(None, None),
             row(new_trace_id(), new_span_id()), row(None, new_span_id())]
    db.execute(store.INSERT, store.insert_params(batch))
    stored = dict((r[0], r[1:]) for r in db.execute(
        "SELECT id::text, trace_id, span_id FROM executions WHERE id = ANY(%s::uuid[])",
        ([r.id for r in batch],)).fetchall())
    assert [stored[r.id] for r in batch] == [(r.trace_id, r.span_id) for r in batch]
    alone = row(None, None)  # one row: an empty string splits into no element at all
    db.execute(store.INSERT, store.insert_params([alone]))
    assert db.execute("SELECT trace_id, span_id FROM executions WHERE id = %s",
                      (alone.id,)).fetchone() == (None, None)
