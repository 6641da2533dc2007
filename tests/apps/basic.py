"""Tasks for the engine tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rhythm_core import current_execution, task

from .record import record


@task(queue="basic", retries=0)
def add(a: int, b: int) -> int:
    record()
    return a + b


@task(queue="basic", retries=0)
async def greet(name: str, punctuation: str = "!") -> str:
    record()
    return f"hello {name}{punctuation}"


@task(queue="basic", retries=2, retry_backoff=0.3)
def flaky(times_to_fail: int) -> int:
    record()
    execution = current_execution()
    assert execution is not None
    if execution.attempt <= times_to_fail:
        raise RuntimeError(f"failing attempt {execution.attempt} on purpose")
    return execution.attempt


@task(queue="basic", retries=1, retry_backoff=0.05)
def always_fails() -> None:
    record()
    raise ValueError("boom")


@task(queue="basic", retries=0, timeout=0.3)
async def slow_async(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finished"


@task(queue="basic", retries=0, timeout=0.3)
def slow_sync(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"


@task(queue="basic", retries=3)
def returns_unserialisable() -> object:
    return object()


@task(queue="bulk", retries=0)
async def bulk_item(i: int) -> int:
    record()
    return i


@task(queue="slow", retries=0, timeout=None)
async def sleeper(seconds: float) -> float:
    record("start")
    await asyncio.sleep(seconds)
    record("end")
    return seconds


@task(queue="hold", retries=0, timeout=None)
async def hold_until(marker: str) -> str:
    """Runs until the file ``marker`` exists (lets a test kill the worker mid-task)."""
    record("start")
    while not Path(marker).exists():
        await asyncio.sleep(0.02)
    record("end")
    return "released"


@task(queue="basic", retries=3)
def returns_lone_surrogate() -> str:
    return "broken \ud800 text"
