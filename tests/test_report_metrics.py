"""What the report loop counts for a batch of outcomes: durations per function and status,
serialization both ways, execution durations (a wait the clocks make negative is none), and
completions (retries are not)."""

from __future__ import annotations

import time
from typing import Any

from rhythm_core.ids import new_execution_id, new_span_id, new_trace_id
from rhythm_core.observability.attempt import AttemptRecord, Failure
from rhythm_core.observability.config import resolve
from rhythm_core.observability.instruments import Instruments
from rhythm_core.observability.manager import Observability
from rhythm_core.store import COMPLETED, FAILED, RETRY, Claimed
from rhythm_core.testing import RecordingPlugin

HISTOGRAMS = (
    "rhythm.function.execution.duration",
    "rhythm.serialization.duration",
    "rhythm.execution.duration",
)


def instruments() -> tuple[Instruments, RecordingPlugin]:
    recorder = RecordingPlugin()
    block = {"plugins": [recorder], "traces": {"enabled": False}, "metrics": {"enabled": True}}
    return Instruments(Observability(resolve(block)).start(), "w1"), recorder


def attempts(n: int, now: int, function: str = "app.f", queue: str = "q") -> list[Claimed]:
    """Rows with the stamps a worker writes, each with different times; the last was created
    after ``now`` (clocks disagree), so its wait is clamped to none."""
    rows = []
    for i in range(n):
        created = now + 5_000 if i == n - 1 else now - 1_000_000 * (i + 1)
        row = Claimed(id=new_execution_id(), type="task", function_name=function, queue=queue,
                      args="[]", kwargs="{}", attempt=1, max_retries=0, timeout=None, lease=1,
                      parent_id=None, trace_id=new_trace_id(), span_id=new_span_id(),
                      trace_context=None, created_ns=created, replays=0)
        record = row.record = AttemptRecord(claim_start=now - 900, claim_end=now - 800)
        record.decode_start, record.start = now - 700 + i, now - 600 + 2 * i
        record.end, record.encode_end = now - 300 + 5 * i, now - 100 + 7 * i
        rows.append(row)
    return rows


def observations(recorder: RecordingPlugin) -> dict[tuple[str, tuple[Any, ...]], list[float]]:
    found: dict[tuple[str, tuple[Any, ...]], list[float]] = {}
    for point in recorder.points:
        if point.name in HISTOGRAMS:
            key = (point.name, tuple(sorted(point.attributes.items())))
            found.setdefault(key, []).extend(point.each())
    return found


def test_a_completed_batch_is_counted() -> None:
    now = time.time_ns()
    counting, recorder = instruments()
    rows = attempts(6, now)
    counting.reported([(row, COMPLETED) for row in rows], now, now)
    counting.flush()
    got = observations(recorder)
    assert len(got) == 4  # function, decode, encode, execution duration
    assert all(len(values) == 6 for values in got.values())
    function = next(v for (n, _), v in got.items() if n == "rhythm.function.execution.duration")
    assert function == [(300 + 3 * i) / 1e9 for i in range(6)]  # end - start of each row
    execution = next(v for (n, _), v in got.items() if n == "rhythm.execution.duration")
    assert execution[-1] == 0.0  # the row created after the report: no wait
    assert execution[:-1] == [1_000_000 * (i + 1) / 1e9 for i in range(5)]
    assert recorder.total("rhythm.executions.completed") == 6


def test_a_mixed_batch_is_counted_by_function_and_status() -> None:
    now = time.time_ns()
    mixed, recorder = instruments()
    rows = attempts(3, now) + attempts(2, now, function="app.g")
    failed = attempts(2, now)
    failed[0].record.error = Failure("ValueError", "boom")
    rows += failed
    kinds = [COMPLETED] * 5 + [FAILED, RETRY]
    mixed.reported(list(zip(rows, kinds, strict=True)), now, now)
    mixed.flush()
    got = observations(recorder)
    functions = {
        dict(labels)["function_name"] + "/" + dict(labels)["status"]: len(values)
        for (name, labels), values in got.items()
        if name == "rhythm.function.execution.duration"
    }
    assert functions == {"app.f/success": 4, "app.g/success": 2, "app.f/failed": 1}
    assert recorder.total("rhythm.executions.completed", status="success") == 5
    assert recorder.total("rhythm.executions.completed", status="failed") == 1  # not the retry
