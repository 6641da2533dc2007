"""No-op functions the benchmarks enqueue."""

from rhythm_core import task


@task(queue="bench", retries=0, timeout=None)
async def noop_async() -> None:
    return None


@task(queue="bench-sync", retries=0, timeout=None)
def noop_sync() -> None:
    return None
