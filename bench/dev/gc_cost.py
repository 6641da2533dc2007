"""Where a worker's garbage collection time goes, by generation, with observability off, with
the recording plugin and with a plugin that keeps nothing (both at the default sample rate).

    python -m bench.dev.gc_cost [--tasks 20000] [--rounds 2]

A plugin that keeps what it is given (the recording plugin keeps every span) adds objects
that survive, and CPython's collector pays for survivors twice: more young collections, and
full collections, each of which walks the whole heap. This counts collections and the wall
time spent in them by generation (a ``gc.callbacks`` clock), per run of ``--tasks`` no-op
tasks, so the cost of what a plugin keeps can be told apart from the core layer's own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from typing import Any

import rhythm_core
from rhythm_core import Worker, testing
from rhythm_core.observability.config import DEFAULT_SAMPLE_RATE

from ..common import (
    OFF,
    GcClock,
    enqueue,
    machine,
    run_until_completed,
    scratch_database,
    truncate,
)
from ..noop_tasks import noop_async
from ..overhead import Discarding, observed


def one_run(url: str, block: dict[str, Any], tasks: int) -> GcClock:
    truncate(url)
    enqueue(noop_async, tasks)
    testing.activate(testing.DISABLED)
    gc.collect()  # what the previous run left is not this one's
    worker = Worker(noop_async.queue_name, database_url=url, observability=block,
                    concurrency=100, poll_interval=0.05)
    clock = GcClock()
    gc.callbacks.append(clock)
    try:
        asyncio.run(run_until_completed(worker, url, noop_async.queue_name, tasks))
    finally:
        gc.callbacks.remove(clock)
    return clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    variants = {
        "off": lambda: OFF,
        "recording plugin": lambda: observed(DEFAULT_SAMPLE_RATE),
        "keep-nothing plugin": lambda: observed(DEFAULT_SAMPLE_RATE, Discarding()),
    }
    print(f"machine: {machine()}; {args.tasks} no-op tasks a run, sample rate "
          f"{DEFAULT_SAMPLE_RATE}\n")
    print("| round | variant | collections gen 0 / 1 / 2 | ms in gen 0 / 1 / 2 "
          "| µs per execution |")
    print("|---:|---|---|---|---:|")
    with scratch_database() as url:
        rhythm_core.configure(url)
        for round_no in range(1, args.rounds + 1):
            for name, block in variants.items():
                clock = one_run(url, block(), args.tasks)
                counts = " / ".join(map(str, clock.count))
                spent = " / ".join(f"{s * 1e3:.1f}" for s in clock.by_generation)
                per = clock.seconds / args.tasks * 1e6
                print(f"| {round_no} | {name} | {counts} | {spent} | {per:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
