"""No-op functions the benchmarks enqueue."""

import asyncio

from rhythm_core import task


@task(queue="bench", retries=0, timeout=None)
async def noop_async() -> None:
    return None


@task(queue="bench-sync", retries=0, timeout=None)
def noop_sync() -> None:
    return None


@task(queue="bench-1ms", retries=0, timeout=None)
async def sleep_1ms() -> None:
    await asyncio.sleep(0.001)


@task(queue="bench-hold", retries=0, timeout=None)
async def hold() -> None:
    """Runs until its worker dies (bench.failover kills it)."""
    await asyncio.sleep(3600)
