"""The workflow scenario run by worker processes: three tasks, one failing once, one held
until a marker file exists (so that its worker can be killed mid-task)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rhythm_core import current_execution, task, workflow


@task(queue="otel-scenario", retries=0)
async def plain(x: int) -> int:
    return x * 10


@task(queue="otel-scenario", retries=2, retry_backoff=0.1)
def flaky_once(x: int) -> int:
    execution = current_execution()
    assert execution is not None
    if execution.attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return x * 100


@task(queue="otel-scenario", retries=0)
async def held(marker: str) -> str:
    with open(marker + ".started", "a") as started:  # one line per attempt
        started.write(f"{os.getpid()}\n")
    while not Path(marker).exists():
        await asyncio.sleep(0.05)
    return "released"


@workflow(queue="otel-scenario")
async def three_tasks(marker: str) -> list[object]:
    return [await plain.run(1), await flaky_once.run(2), await held.run(marker)]


@task(queue="otel-scenario", retries=0)
async def noop() -> None:
    return None


@task(queue="otel-scenario", retries=0)
async def flaky_always(x: int) -> None:
    raise ValueError(f"failure {x}, on purpose")


@task(queue="otel-scenario", retries=0)
async def slow(seconds: float) -> None:
    await asyncio.sleep(seconds)


@task(queue="otel-unserved", retries=0)
async def unserved() -> None:
    """Queued where no test worker claims: it stays waiting (the queue-depth gauge)."""
