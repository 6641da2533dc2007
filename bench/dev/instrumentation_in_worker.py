"""Where the core layer's time goes inside a running worker.

    python -m bench.dev.instrumentation_in_worker [--tasks 20000] [--runs 3]

Runs a worker on ``--tasks`` no-op async tasks with a plugin that keeps nothing, tracing and
metrics on at the default sample rate, with each call the worker makes into
:class:`~rhythm_core.observability.instruments.Instruments` timed (wall clock, so a garbage
collection that an allocation in the call sets off is charged to it). The wrapper's own cost
per call is printed first: subtract it. Set beside ``bench.dev.instrumentation_cost``,
which times the same calls without a database or an event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import rhythm_core
from rhythm_core import Worker, testing
from rhythm_core.observability.config import DEFAULT_SAMPLE_RATE
from rhythm_core.observability.instruments import Instruments

from ..common import enqueue, machine, run_until_completed, scratch_database, truncate
from ..noop_tasks import noop_async
from ..overhead import Discarding, observed

# the attempt's own times are stamped by the worker inline, not through a call
CALLS = ("claimed", "reported")


def timed(spent: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter_ns()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter_ns() - began

    return call


@contextmanager
def timing(spent: Counter[str]) -> Iterator[None]:
    saved = {name: getattr(Instruments, name) for name in CALLS}
    for name, function in saved.items():
        setattr(Instruments, name, timed(spent, name, function))
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(Instruments, name, function)


def wrapper_cost() -> float:
    """ns the timing wrapper adds to a call of a function that does nothing."""
    spent: Counter[str] = Counter()
    nothing = timed(spent, "nothing", lambda: None)
    began = time.perf_counter_ns()
    for _ in range(100_000):
        nothing()
    return (time.perf_counter_ns() - began) / 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; timing wrapper {wrapper_cost():.0f} ns per call\n")
    print("| run | tasks/s | CPU µs/execution | " + " | ".join(CALLS) + " | all (µs/execution) |")
    print("|---:|---:|---:|" + "---:|" * (len(CALLS) + 1))
    with scratch_database() as url:
        rhythm_core.configure(url)
        for run in range(1, args.runs + 1):
            testing.activate(testing.DISABLED)
            truncate(url)
            enqueue(noop_async, args.tasks)
            gc.collect()
            spent: Counter[str] = Counter()
            worker = Worker(noop_async.queue_name, database_url=url, concurrency=100,
                            poll_interval=0.05,
                            observability=observed(DEFAULT_SAMPLE_RATE, Discarding()))
            began = time.process_time()
            with timing(spent):
                elapsed = asyncio.run(
                    run_until_completed(worker, url, noop_async.queue_name, args.tasks))
            cpu = (time.process_time() - began) / args.tasks * 1e6
            per = {name: spent[name] / args.tasks / 1000 for name in CALLS}
            print(f"| {run} | {args.tasks / elapsed:,.0f} | {cpu:.1f} | "
                  + " | ".join(f"{per[name]:.2f}" for name in CALLS)
                  + f" | {sum(per.values()):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
