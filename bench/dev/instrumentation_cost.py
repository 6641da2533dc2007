"""The core layer's own CPU cost per execution, without a database or an event loop.

    python -m bench.dev.instrumentation_cost [--batches 50] [--batch 100] [--repeats 15]

Drives the worker's instrumentation
(:class:`~rhythm_core.observability.instruments.Instruments`) the way a worker does for claim
batches of ``--batch`` rows: the claim, each attempt's start and end with its decoding and
encoding timings, and the report of the batch, with a plugin that receives every span and
metric point and keeps nothing. The best of ``--repeats`` runs, with
the garbage collector paused during each, is the figure: what the instrumentation itself
costs, steadier than throughput ratios on a shared machine, and blind to what it does to the
rest of the worker (garbage collection, caches), which ``bench.overhead`` sees.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from rhythm_core.ids import new_execution_id, new_span_id, new_trace_id
from rhythm_core.observability.config import DEFAULT_SAMPLE_RATE, resolve
from rhythm_core.observability.instruments import Instruments
from rhythm_core.observability.manager import Observability
from rhythm_core.store import COMPLETED, Claimed

from ..common import machine
from ..overhead import Discarding


def claimed_rows(n: int) -> list[Claimed]:
    """Rows as a claim returns them for executions enqueued with tracing off."""
    return [
        Claimed(new_execution_id(), "task", "bench.noop", "bench", "[]", "{}", 1, 0, None, 1,
                None, new_trace_id(), new_span_id(), None, time.time_ns(), 0)
        for _ in range(n)
    ]


def one_run(instruments: Instruments, batches: list[list[Claimed]]) -> float:
    began = time.perf_counter()
    for rows in batches:
        claim_start = time.time_ns()
        instruments.claimed(rows, ["bench"], claim_start, time.time_ns())
        for row in rows:  # the stamps the worker writes into each record
            record = row.record
            record.decode_start = time.time_ns()
            record.start = time.time_ns()
            record.end = time.time_ns()
            record.encode_end = time.time_ns()
            record.result_size = 4
        report_start = time.time_ns()
        instruments.reported([(row, COMPLETED) for row in rows], report_start, time.time_ns())
    return time.perf_counter() - began


def cost(rate: float, batches: int, batch: int, repeats: int) -> float:
    """Best µs per execution at sample rate ``rate``."""
    block = {"plugins": [Discarding()], "traces": {"enabled": True, "sample_rate": rate},
             "metrics": {"enabled": True}}
    instruments = Instruments(Observability(resolve(block)).start(), "bench")
    best = float("inf")
    for _ in range(repeats):
        work = [claimed_rows(batch) for _ in range(batches)]
        gc.collect()
        gc.disable()
        try:
            best = min(best, one_run(instruments, work))
        finally:
            gc.enable()
    return best / (batches * batch) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; {args.batches} batches of {args.batch} rows, "
          f"best of {args.repeats}\n")
    print("| sample rate | µs per execution |")
    print("|---:|---:|")
    for rate in (0.0, DEFAULT_SAMPLE_RATE, 1.0):
        print(f"| {rate} | {cost(rate, args.batches, args.batch, args.repeats):.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
