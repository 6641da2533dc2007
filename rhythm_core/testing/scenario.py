"""Functions for a plugin's end-to-end tests, run by worker processes (the
``rhythm_worker_process`` fixture) on the queue :data:`QUEUE`.

The workflow scenario every backend plugin shows: :func:`three_tasks` runs :func:`plain`,
:func:`flaky_once` (fails its first attempt) and :func:`held` (waits for a marker file, so
that its worker can be killed mid-task and the execution taken over by another). The rest
fill a backend with ordinary work: :func:`noop`, :func:`flaky_always`, :func:`slow`, and
:func:`unserved` (on a queue no scenario worker claims, so it stays waiting).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rhythm_core import current_execution, task, workflow

QUEUE = "rhythm-scenario"


@task(queue=QUEUE, retries=0)
async def plain(x: int) -> int:
    return x * 10


@task(queue=QUEUE, retries=2, retry_backoff=0.1)
def flaky_once(x: int) -> int:
    execution = current_execution()
    assert execution is not None
    if execution.attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return x * 100


@task(queue=QUEUE, retries=0)
async def held(marker: str) -> str:
    with open(marker + ".started", "a") as started:  # one line per attempt
        started.write(f"{os.getpid()}\n")
    while not Path(marker).exists():
        await asyncio.sleep(0.05)
    return "released"


@workflow(queue=QUEUE)
async def three_tasks(marker: str) -> list[object]:
    return [await plain.run(1), await flaky_once.run(2), await held.run(marker)]


@task(queue=QUEUE, retries=0)
async def noop() -> None:
    return None


@task(queue=QUEUE, retries=0)
async def flaky_always(x: int) -> None:
    raise ValueError(f"failure {x}, on purpose")


@task(queue=QUEUE, retries=0)
async def slow(seconds: float) -> None:
    await asyncio.sleep(seconds)


@task(queue="rhythm-scenario-unserved", retries=0)
async def unserved() -> None:
    """Queued where no test worker claims: it stays waiting (the queue-depth gauge)."""
