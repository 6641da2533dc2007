"""What observability costs a worker, in instructions per execution counted by valgrind.

    python -m bench.dev.instructions [--tasks 4000] [--base 1000] [--variants off,on-default,...]

Throughput ratios on a shared machine move by several points from one run to the next (on
some machines by ten); an instruction count does not. Each variant runs in a child process
under ``valgrind --tool=callgrind`` (Debian package ``valgrind``), once with ``--base`` tasks
and once with ``--tasks``: the difference divided by the difference in tasks is what one
execution costs, start-up and imports cancelling out. Only the worker's process is counted;
PostgreSQL runs outside valgrind. The tasks are enqueued by this process before the child
starts, except for the ids variants, whose child enqueues them (with and without trace ids)
because that is part of what they compare; the ``enqueue-*`` pair only enqueues.

Instructions are not time: a cache miss or a system call costs more than its count, and a
worker also waits on PostgreSQL. But for a CPU-bound worker, "off / on" instructions are close
to the "on / off" throughput ratio, and they are the same on every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import subprocess
import sys
import time
from typing import Any

import psycopg

VARIANTS = ("removed", "off", "on-default", "on-100", "discard-default", "discard-100",
            "traces-only", "metrics-only", "ids", "no-ids", "enqueue-ids", "enqueue-no-ids")
# variants whose child enqueues its own tasks; the enqueue-* ones run no worker: enqueueing
# alone is deterministic to a few instructions a row, where a worker's batches are not
ENQUEUING = ("ids", "no-ids", "enqueue-ids", "enqueue-no-ids")
ROWS = [
    ("off / instrumentation removed", "off", "removed"),
    ("on, recording plugin, default rate / off", "on-default", "off"),
    ("on, recording plugin, 100% / off", "on-100", "off"),
    ("on, keep-nothing plugin, default rate / off", "discard-default", "off"),
    ("on, keep-nothing plugin, 100% / off", "discard-100", "off"),
    ("traces only, keep-nothing plugin, default rate / off", "traces-only", "off"),
    ("metrics only, keep-nothing plugin / off", "metrics-only", "off"),
    ("ids in every row / no ids (enqueue + run)", "ids", "no-ids"),
    ("ids in every row / no ids (enqueue only, per row)", "enqueue-ids", "enqueue-no-ids"),
]
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


async def _stop_when_done(worker: Any, url: str, queue: str, total: int) -> None:
    """Stop ``worker`` once ``total`` executions completed. Polls seldom: under valgrind a
    poll costs as much as a few executions, and a slower variant would poll more often."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM executions WHERE status = 'completed' AND queue = %s",
                (queue,),
            )
            row = await cursor.fetchone()
            if row and row[0] >= total:
                worker.stop()
                return
            await asyncio.sleep(0.5)


def child(variant: str, url: str, tasks: int) -> None:
    """One run of ``variant``, as the process valgrind counts."""
    import rhythm_core
    from rhythm_core import Worker
    from rhythm_core.observability.config import DEFAULT_SAMPLE_RATE

    from ..bare import bare_worker_class
    from .common import OFF, enqueue
    from .noop_tasks import noop_async
    from .overhead import Discarding, observed, without_trace_ids

    rhythm_core.configure(url)
    if variant in ENQUEUING:
        with contextlib.nullcontext() if "no-ids" not in variant else without_trace_ids():
            enqueue(noop_async, tasks)
        if variant.startswith("enqueue-"):
            return
    blocks: dict[str, Any] = {
        "on-default": observed(DEFAULT_SAMPLE_RATE),
        "on-100": observed(1.0),
        "discard-default": observed(DEFAULT_SAMPLE_RATE, Discarding()),
        "discard-100": observed(1.0, Discarding()),
        "traces-only": observed(DEFAULT_SAMPLE_RATE, Discarding(), metrics=False),
        "metrics-only": observed(DEFAULT_SAMPLE_RATE, Discarding(), traces=False),
    }
    worker_class = bare_worker_class()[0] if variant == "removed" else Worker
    worker = worker_class(noop_async.queue_name, database_url=url, concurrency=100,
                          poll_interval=0.05, observability=blocks.get(variant, OFF))

    async def run() -> None:
        await asyncio.gather(worker.run_async(),
                             _stop_when_done(worker, url, noop_async.queue_name, tasks))

    asyncio.run(run())


def counted(variant: str, url: str, tasks: int) -> int:
    """Instructions of a child process running ``tasks`` executions of ``variant``."""
    from .common import enqueue, truncate
    from .noop_tasks import noop_async

    truncate(url)
    if variant not in ENQUEUING:
        enqueue(noop_async, tasks)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.dev.instructions", "--child", variant, "--url", url,
         "--tasks", str(tasks)],
        capture_output=True, text=True, check=False,
    )
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{variant} under valgrind failed:\n{done.stderr[-3000:]}")
    return int(found[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--base", type=int, default=1000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.url, args.tasks)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown --variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if args.tasks <= args.base:
        parser.error(f"--tasks ({args.tasks}) must be more than --base ({args.base})")

    import rhythm_core

    from .common import machine, scratch_database

    print(f"machine: {machine()}; instructions counted by callgrind, "
          f"({args.tasks} - {args.base} tasks) per variant")
    per: dict[str, float] = {}
    with scratch_database() as url:
        rhythm_core.configure(url)  # where this process enqueues
        for variant in variants:
            began = time.monotonic()
            small, large = counted(variant, url, args.base), counted(variant, url, args.tasks)
            per[variant] = (large - small) / (args.tasks - args.base)
            print(f"{variant:>16}: {per[variant]:,.0f} instructions per execution "
                  f"({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    print("\n| comparison | A instructions/execution | B | A - B | B / A |")
    print("|---|---:|---:|---:|---:|")
    for label, a, b in ROWS:
        if a in per and b in per:
            print(f"| {label} | {per[a]:,.0f} | {per[b]:,.0f} | {per[a] - per[b]:+,.0f} "
                  f"| {per[b] / per[a]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
