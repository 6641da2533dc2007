"""Python bytecodes a worker runs per execution, by function, against observability off.

    python -m bench.dev.opcodes [--tasks 2000] [--variants on-default,traces-only,metrics-only]

Each variant runs ``--tasks`` no-op tasks in this process under ``sys.settrace`` with opcode
events on, and every bytecode executed in the event loop's thread is counted against the
function it belongs to. The table gives, per variant, the extra bytecodes an execution runs
and the functions they come from. Bytecodes are not time (a C call such as a regular
expression or ``json.loads`` is one), but unlike a throughput ratio the count hardly moves
between runs, and unlike callgrind it names the Python function. Under tracing the worker
runs about a hundred times slower, so batches differ from a real run's; compare variants of
one invocation. Rows are enqueued with observability off (as ``bench.overhead`` does), or,
with ``--traced-enqueue``, by a process that traces (their carriers are then read at claim).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from typing import Any

import rhythm_core
from rhythm_core import Worker, testing
from rhythm_core.observability.config import DEFAULT_SAMPLE_RATE

from ..common import OFF, enqueue, machine, run_until_completed, scratch_database, truncate
from ..noop_tasks import noop_async
from ..overhead import Discarding, observed

VARIANTS: dict[str, Any] = {
    "on-default": lambda: observed(DEFAULT_SAMPLE_RATE),
    "discard-default": lambda: observed(DEFAULT_SAMPLE_RATE, Discarding()),
    "traces-only": lambda: observed(DEFAULT_SAMPLE_RATE, Discarding(), metrics=False),
    "metrics-only": lambda: observed(DEFAULT_SAMPLE_RATE, Discarding(), traces=False),
}


def counted_run(url: str, block: dict[str, Any], tasks: int, traced: bool) -> Counter[str]:
    """Bytecodes per function of one worker run over ``tasks`` executions."""
    truncate(url)
    enqueuer = testing.from_block(observed(DEFAULT_SAMPLE_RATE, Discarding())) if traced \
        else testing.DISABLED
    testing.activate(enqueuer)
    enqueue(noop_async, tasks)
    testing.activate(testing.DISABLED)
    worker = Worker(noop_async.queue_name, database_url=url, observability=block,
                    concurrency=100, poll_interval=0.05)
    counts: Counter[str] = Counter()

    def tracer(frame: Any, event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}"] += 1
        return tracer

    sys.settrace(tracer)
    try:
        asyncio.run(run_until_completed(worker, url, noop_async.queue_name, tasks))
    finally:
        sys.settrace(None)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--variants", default="on-default,traces-only,metrics-only")
    parser.add_argument("--top", type=int, default=12, help="functions listed per variant")
    parser.add_argument("--traced-enqueue", action="store_true",
                        help="enqueue with tracing on, so that rows carry trace contexts")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown --variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    print(f"machine: {machine()}; {args.tasks} no-op tasks a run, rows enqueued "
          f"{'traced' if args.traced_enqueue else 'with observability off'}", flush=True)
    with scratch_database() as url:
        rhythm_core.configure(url)
        base = counted_run(url, OFF, args.tasks, args.traced_enqueue)
        print(f"\noff: {sum(base.values()) / args.tasks:,.0f} bytecodes per execution")
        for name in variants:
            counts = counted_run(url, VARIANTS[name](), args.tasks, args.traced_enqueue)
            counts.subtract(base)
            print(f"\n{name}: {sum(counts.values()) / args.tasks:+,.0f} bytecodes per "
                  "execution against off\n\n| function | bytecodes per execution |\n|---|---:|")
            top = sorted(counts.items(), key=lambda item: -abs(item[1]))[: args.top]
            for function, n in top:
                print(f"| `{function}` | {n / args.tasks:+.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
