"""Workflows for the engine tests."""

from __future__ import annotations

import asyncio
from typing import Any

from rhythm_core import ExecutionFailed, is_replaying, task, workflow

from .basic import hold_until
from .record import record


@task(queue="wf-tasks", retries=0)
async def double(x: int) -> int:
    record()
    return 2 * x


@task(queue="wf-tasks", retries=0)
async def triple(x: int) -> int:
    return 3 * x


@task(queue="wf-tasks", retries=0)
def explode(message: str) -> None:
    raise ValueError(message)


@workflow(queue="wf")
async def pipeline(x: int) -> dict[str, int]:
    """Sequential, then two children in parallel, then one more."""
    record(f"start replaying={is_replaying()}")
    a = await double.run(x)
    record(f"after-a replaying={is_replaying()}")
    b, c = await asyncio.gather(double.run(a), double.run(a + 1))
    d = await double.run(b + c)
    return {"a": a, "b": b, "c": c, "d": d}


@workflow(queue="wf")
async def catches() -> str:
    try:
        await explode.run("expected failure")
    except ExecutionFailed as exc:
        after = await double.run(21)
        return f"caught {exc.error_type}: {exc.error_message}; then {after}"
    return "not reached"


@workflow(queue="wf")
async def does_not_catch() -> str:
    await explode.run("unhandled failure")
    return "not reached"


@workflow(queue="wf")
async def changes_its_mind() -> int:
    """Calls a different task on replay: a divergence from its history."""
    if is_replaying():
        return await triple.run(1)
    return await double.run(1)


@workflow(queue="wf")
async def skips_its_step_on_replay() -> int:
    if is_replaying():
        return 0
    return await double.run(1)


@workflow(queue="wf")
async def nested(x: int) -> int:
    inner: dict[str, Any] = await pipeline.run(x)
    return inner["d"] + 1


@workflow(queue="wf")
async def wide(n: int) -> int:
    values = await asyncio.gather(*(double.run(i) for i in range(n)))
    return sum(values)


async def two_steps(x: int) -> int:
    first = await double.run(x)
    return await double.run(first + 1)


@workflow(queue="wf")
async def branches() -> list[int]:
    """Concurrent branches that each take several steps: branch one's first step replays
    instantly on later passes, so its second step must not take branch two's number."""
    single = triple.run(3)
    both = await asyncio.gather(two_steps(1), two_steps(10), single)
    async with asyncio.TaskGroup() as group:
        later = group.create_task(two_steps(100))
    return [*both, later.result()]


@workflow(queue="hold")
async def holding_workflow(marker: str) -> str:
    first = await double.run(5)
    held = await hold_until.run(marker)
    return f"{first} {held}"


# (execution id, point in the body, what a backend holds as current there) for each pass
SEEN: list[tuple[str, str, Any]] = []


def _note(point: str) -> None:
    from rhythm_core import current_execution
    from rhythm_core.testing import made_current

    execution = current_execution()
    assert execution is not None
    SEEN.append((execution.id, point, made_current()))


@workflow(queue="wf")
async def observed(x: int) -> int:
    """Notes what the backends hold as current before, between and after two steps."""
    _note("start")
    first = await double.run(x)
    _note("after-first")
    second = await triple.run(first)
    _note("end")
    return second
