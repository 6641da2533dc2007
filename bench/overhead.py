"""What observability costs, as throughput ratios from alternating runs in one process.

    python -m bench.overhead [--tasks 20000] [--rounds 5] [--concurrency 100] [--variants a,b]

- off vs removed: the engine with observability off, against the same engine with its
  instrumentation blocks deleted from the source (bench/bare.py). Target >= 0.99.
- on (recording plugin, core layer only) vs off, at the default sample rate and at 100%.
  Target >= 0.95 at the default. The recording plugin keeps every span and point in memory,
  and the garbage collector's full passes grow with what it keeps; the same rows with a
  plugin that receives everything and keeps nothing separate that from the core's own cost.
  The last column is the time per execution spent collecting garbage. Traces alone and
  metrics alone (keep-nothing plugin) show which half of the layer costs what.
- ids vs no ids: trace and span ids written to every row (always done) against rows without
  them, enqueue and run together. Target: under 1% (ratio >= 0.99).

Each variant runs ``--rounds`` times, interleaved A B C ... C B A ..., on no-op async tasks.
A ratio is the median over rounds of A/B within a round (the two ran next to each other); the
middle half of those per-round ratios shows how far the machine's noise lets it be trusted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import rhythm_core
from rhythm_core import Worker, client, hookimpl
from rhythm_core.ids import execution_id_of, random_hex
from rhythm_core.observability.config import DEFAULT_SAMPLE_RATE
from rhythm_core.observability.telemetry import MetricPoint, Span
from rhythm_core.store import NewExecution
from rhythm_core.testing import RecordingPlugin

from .bare import bare_worker_class
from .common import (
    OFF,
    alternate,
    enqueue,
    machine,
    median,
    paired_ratios,
    run_until_completed,
    scratch_database,
    truncate,
)
from .noop_tasks import noop_async


def _ids_only(rows: list[NewExecution]) -> None:
    """What an engine without trace ids does to the rows it enqueues: give each an execution
    id, drawn per batch as ``rhythm_core.ids.start_own_traces`` draws, and nothing else."""
    drawn = random_hex(32 * len(rows))
    for at, row in enumerate(rows):
        if not row.id:
            row.id = execution_id_of(drawn[32 * at : 32 * at + 32])


@contextlib.contextmanager
def without_trace_ids() -> Iterator[None]:
    """Rows enqueued inside the block (tracing off) get no trace id and no span id."""
    saved = client.start_own_traces
    client.start_own_traces = _ids_only
    try:
        yield
    finally:
        client.start_own_traces = saved


class Discarding:
    """Receives every span and metric point, keeps nothing."""

    name = "discarding"

    @hookimpl
    def rhythm_span_start(self, span: Span) -> None:
        pass

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        pass

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        pass


def observed(rate: float, plugin: object | None = None, *, traces: bool = True,
             metrics: bool = True) -> dict[str, Any]:
    return {"plugins": [plugin or RecordingPlugin()],
            "traces": {"enabled": traces, "sample_rate": rate}, "metrics": {"enabled": metrics}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--variants", default="",
                        help="comma-separated names to run (default: all); a comparison is "
                             "printed when both its sides ran")
    args = parser.parse_args(argv)
    bare_worker, removed = bare_worker_class()
    off = OFF

    def worker_run(block: Callable[[], dict[str, Any]],
                   worker_class: Any = Worker) -> Callable[[], float]:
        """A run of a worker observed per ``block()`` (called per run: a fresh plugin)."""
        def run() -> float:
            truncate(url)
            enqueue(noop_async, args.tasks)
            worker = worker_class(noop_async.queue_name, database_url=url,
                                  observability=block(), **common)
            return args.tasks / asyncio.run(
                run_until_completed(worker, url, noop_async.queue_name, args.tasks))
        return run

    def end_to_end(ids: bool) -> Callable[[], float]:
        def run() -> float:
            truncate(url)
            with contextlib.nullcontext() if ids else without_trace_ids():
                enqueued = enqueue(noop_async, args.tasks)
            worker = Worker(noop_async.queue_name, concurrency=args.concurrency,
                            database_url=url, poll_interval=0.05, observability=off)
            ran = asyncio.run(run_until_completed(worker, url, noop_async.queue_name, args.tasks))
            return args.tasks / (enqueued + ran)
        return run

    common = {"concurrency": args.concurrency, "poll_interval": 0.05}
    print(f"machine: {machine()}; instrumentation blocks removed for 'removed': {removed}")
    with scratch_database() as url:
        rhythm_core.configure(url)
        variants: dict[str, Callable[[], float]] = {
            "removed": worker_run(lambda: off, bare_worker),
            "off": worker_run(lambda: off),
            "on-default": worker_run(lambda: observed(DEFAULT_SAMPLE_RATE)),
            "on-100": worker_run(lambda: observed(1.0)),
            "discard-default": worker_run(lambda: observed(DEFAULT_SAMPLE_RATE, Discarding())),
            "discard-100": worker_run(lambda: observed(1.0, Discarding())),
            "traces-only": worker_run(
                lambda: observed(DEFAULT_SAMPLE_RATE, Discarding(), metrics=False)),
            "metrics-only": worker_run(
                lambda: observed(DEFAULT_SAMPLE_RATE, Discarding(), traces=False)),
            "ids": end_to_end(True),
            "no-ids": end_to_end(False),
        }
        if args.variants:
            chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
            unknown = sorted(set(chosen) - set(variants))
            if unknown:
                parser.error(f"unknown --variants {', '.join(unknown)}; known: "
                             f"{', '.join(variants)}")
            variants = {name: variants[name] for name in chosen}
        gc_us: dict[str, list[float]] = {}
        rates, cpu = alternate(variants, args.rounds, args.tasks, gc_us)
        client.reset()

    m = {name: median(values) for name, values in rates.items()}
    c = {name: median(values) for name, values in cpu.items()}
    print(f"\n{args.tasks} no-op async tasks, concurrency {args.concurrency}, "
          f"{args.rounds} alternating rounds\n")
    g = {name: median(values) for name, values in gc_us.items()}
    print("| comparison | A tasks/s | B tasks/s | ratio A/B | middle half of round ratios "
          "| target | CPU µs/execution A - B | GC µs/execution A, B |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [
        ("off / instrumentation removed", "off", "removed", ">= 0.99"),
        (f"on, recording plugin, sample rate {DEFAULT_SAMPLE_RATE} (default) / off",
         "on-default", "off", ">= 0.95"),
        ("on, recording plugin, sample rate 1.0 / off", "on-100", "off", "(reported)"),
        (f"on, keep-nothing plugin, sample rate {DEFAULT_SAMPLE_RATE} (default) / off",
         "discard-default", "off", "(reported)"),
        ("on, keep-nothing plugin, sample rate 1.0 / off", "discard-100", "off", "(reported)"),
        (f"traces only, keep-nothing plugin, sample rate {DEFAULT_SAMPLE_RATE} / off",
         "traces-only", "off", "(reported)"),
        ("metrics only, keep-nothing plugin / off", "metrics-only", "off", "(reported)"),
        ("ids in every row / no ids (enqueue + run)", "ids", "no-ids", ">= 0.99"),
    ]
    for label, a, b, target in rows:
        if a not in rates or b not in rates:
            continue
        ratio, low, high = paired_ratios(rates, a, b)
        print(f"| {label} | {m[a]:,.0f} | {m[b]:,.0f} | {ratio:.3f} "
              f"| {low:.3f} - {high:.3f} | {target} | {c[a] - c[b]:+.1f} "
              f"| {g[a]:.1f}, {g[b]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
