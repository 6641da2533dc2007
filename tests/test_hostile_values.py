"""Hostile values in what a task raises or returns, and in the rows a worker claims: each
execution still ends with a stored outcome, and the worker process goes on serving others.

The worker is a real process: an exception that escaped containment (SystemExit, say) would
end it, which an in-process worker thread would hide.
"""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

import rhythm_core
from rhythm_core import ExecutionFailed

from .apps import hostile
from .conftest import runs


def final_error(execution_id: str) -> dict:
    with pytest.raises(ExecutionFailed) as raised:
        rhythm_core.wait(execution_id, timeout=20)
    assert raised.value.status == "failed"
    return raised.value.error


def stop_within(worker, seconds: float) -> None:
    began = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=seconds + 5) == 0, worker.output()
    assert time.monotonic() - began < seconds + 5


@pytest.fixture
def hostile_worker(spawn_worker):
    return spawn_worker("tests.apps.hostile", "hostile", extra=["--shutdown-timeout", "2"])


@pytest.mark.parametrize("kind", hostile.RAISES)
@pytest.mark.parametrize("function", [hostile.raise_sync, hostile.raise_async],
                         ids=["sync", "async"])
def test_whatever_a_task_raises_fails_it_and_the_worker_goes_on(
    hostile_worker, function, kind
) -> None:
    execution_id = function.queue(kind)
    error = final_error(execution_id)
    expected = {
        "nul-message": "ValueError", "surrogate-message": "ValueError",
        "unprintable": "Unprintable", "system-exit": "SystemExit",
        "keyboard-interrupt": "KeyboardInterrupt", "generator-exit": "GeneratorExit",
        "own-base-exception": "OwnBaseException",
    }[kind]
    assert error["type"] == expected
    assert error["traceback"], error
    if kind == "nul-message":
        assert "a NUL \\x00 in the message" in error["message"]
    if kind == "surrogate-message":
        assert "\\ud800" in error["message"]
    assert rhythm_core.wait(hostile.ok.queue(7), timeout=20) == 7  # the worker still serves
    assert hostile_worker.proc.poll() is None
    stop_within(hostile_worker, 2)


def test_a_result_that_cannot_be_stored_fails_with_the_reason(hostile_worker) -> None:
    error = final_error(hostile.returns_nul.queue())
    assert error["type"] == "SerializationError"
    assert "NUL" in error["message"] and hostile.returns_nul.name in error["message"]
    # text that only looks like a NUL escape is stored as it is
    assert rhythm_core.wait(hostile.returns_escaped_nul.queue(), timeout=20) == "\\u0000"
    stop_within(hostile_worker, 2)


def test_attempts_past_a_float_exponent_still_retry_and_end(hostile_worker, db) -> None:
    # a row from before retries were bounded, or written by hand: attempt 1,025 of 1,026
    execution_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, attempt, max_retries) "
        "VALUES (%s, 'task', %s, 'hostile', 1025, 1026)",
        (execution_id, hostile.fails_quickly.name),
    )
    error = final_error(execution_id)
    assert error["attempt"] == 1027
    assert [r[2] for r in runs(db, "fails-quickly")] == [1025, 1026, 1027]
    stop_within(hostile_worker, 2)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [("[" * 3000 + "]" * 3000, "{}"), ('{"a": 1}', "{}"), ("[]", "[1]")],
    ids=["nested-args", "args-an-object", "kwargs-a-list"],
)
def test_a_row_whose_arguments_do_not_decode_fails_once(hostile_worker, db, args, kwargs) -> None:
    execution_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, args, kwargs, max_retries) "
        "VALUES (%s, 'task', %s, 'hostile', %s::jsonb, %s::jsonb, 5)",
        (execution_id, hostile.ok.name, args, kwargs),
    )
    error = final_error(execution_id)
    assert error["type"] == "SerializationError" and error["attempt"] == 1  # not retried
    assert rhythm_core.wait(hostile.ok.queue(1), timeout=20) == 1


def test_many_hostile_executions_log_one_line_each_and_little_else(spawn_worker, db) -> None:
    """Each failure is one log record naming its execution and trace, however hostile its
    message (NUL, ``SystemExit``); the engine adds a bounded number of lines of its own."""
    worker = spawn_worker("tests.apps.hostile", "hostile",
                          extra=["--shutdown-timeout", "2", "--log-format", "json"])
    ids = hostile.raise_async.queue_many([("system-exit",)] * 30 + [("nul-message",)] * 30)
    for execution_id in ids:
        final_error(execution_id)
    stop_within(worker, 2)
    records = [json.loads(line) for line in worker.output().splitlines()]  # each line JSON
    failures = [r for r in records if "failed for good" in r["message"]]
    assert sorted(r["execution_id"] for r in failures) == sorted(ids)
    assert all(r["level"] == "ERROR" and r["trace_id"] and "Traceback" in r["exception"]
               for r in failures)
    assert {r["message"].split(": ", 2)[-1].split(":")[0] for r in failures} == {
        "SystemExit", "ValueError"}
    others = [r for r in records if r not in failures]
    assert len(others) < 10, "\n".join(r["message"] for r in others)
