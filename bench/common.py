"""Shared set-up for the benchmarks: a throw-away database and machine facts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from rhythm_core.migrations import ensure_schema


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh database on ``RHYTHM_DATABASE_URL``'s server (or the embedded one), dropped after."""
    server = os.environ.get("RHYTHM_DATABASE_URL")
    if not server:
        from rhythm_core import embedded

        server = embedded.start()
    name = f"rhythm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    ensure_schema(url)
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


class _Stamped(threading.Event):
    """An event that remembers when it was set."""

    at = 0.0

    def set(self) -> None:
        self.at = time.perf_counter()
        super().set()


UNFINISHED = """
SELECT EXISTS (SELECT 1 FROM executions WHERE status = 'pending' AND queue = %s)
    OR EXISTS (SELECT 1 FROM executions WHERE status = 'running')
"""
COMPLETED = "SELECT count(*) FROM executions WHERE status = 'completed' AND queue = %s"


async def run_until_completed(
    worker: Any, url: str, queue: str, total: int, *, settled: Callable[[], bool] | None = None
) -> float:
    """Run ``worker`` until ``total`` executions of ``queue`` are completed; return the seconds
    from its first claim. With ``settled``, the time runs on until it returns True (an exporter
    has sent what it still held), so that work deferred past the last completion counts."""
    ready = _Stamped()
    runner = asyncio.ensure_future(worker.run_async(ready=ready))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            # two probes of the partial indexes: counting completed rows every 10 ms would
            # scan the table and take CPU from the worker being measured
            cursor = await conn.execute(UNFINISHED, (queue,))
            row = await cursor.fetchone()
            if row and not row[0]:
                break
            if runner.done():
                runner.result()
            await asyncio.sleep(0.01)
    while settled is not None and not settled():
        await asyncio.sleep(0.001)
    # from the moment the worker starts claiming: connecting and starting up are not
    # throughput, and weigh a lot in runs of a fraction of a second
    elapsed = time.perf_counter() - ready.at
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(COMPLETED, (queue,))
        row = await cursor.fetchone()
    if not row or row[0] != total:
        raise RuntimeError(f"{row[0] if row else 0} of {total} executions completed")
    worker.stop()
    await runner
    return elapsed


def enqueue(fn: Any, total: int) -> float:
    """Enqueue ``total`` argument-less calls, 1,000 per statement; return seconds."""
    began = time.perf_counter()
    for start in range(0, total, 1000):
        fn.queue_many([()] * min(1000, total - start))
    return time.perf_counter() - began


def truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE executions")
        # a vacuum starting in the middle of one variant's run would be charged to it
        conn.execute("ALTER TABLE executions SET (autovacuum_enabled = off)")


class GcClock:
    """Wall time this process spends in the garbage collector while installed, and how many
    collections of each generation it made."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.by_generation = [0.0, 0.0, 0.0]
        self._began = 0.0

    @property
    def seconds(self) -> float:
        return sum(self.by_generation)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            generation = info["generation"]
            self.count[generation] += 1
            self.by_generation[generation] += time.perf_counter() - self._began


def alternate(
    variants: dict[str, Callable[[], float]],
    rounds: int,
    per_run: int,
    gc_us: dict[str, list[float]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run each variant (a call returning tasks/s) ``rounds`` times, A B C ... then ... C B A
    so that no variant always follows the same neighbour; returns tasks/s and this process's
    CPU µs per execution, per variant, in round order (and, into ``gc_us``, the µs per
    execution spent collecting garbage)."""
    from rhythm_core import testing

    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_no in range(1, rounds + 1):
        for name in order if round_no % 2 else reversed(order):
            testing.activate(testing.DISABLED)  # a previous variant's worker set its own
            gc.collect()  # the last variant's garbage is not this one's cost
            clock = GcClock()
            gc.callbacks.append(clock)
            began = time.process_time()  # this process: the worker, and any enqueueing
            try:
                rates[name].append(variants[name]())
            finally:
                gc.callbacks.remove(clock)
            cpu[name].append((time.process_time() - began) / per_run * 1e6)
            if gc_us is not None:
                gc_us.setdefault(name, []).append(clock.seconds / per_run * 1e6)
            print(f"round {round_no} {name:>12}: {rates[name][-1]:,.0f} tasks/s",
                  file=sys.stderr, flush=True)
    return rates, cpu


def paired_ratios(rates: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    """Median and middle half of the per-round ratios A/B. Each round ran A and B next to each
    other: their ratio cancels the machine's drift between rounds, which medians of each
    variant alone do not."""
    ratios = sorted(x / y for x, y in zip(rates[a], rates[b], strict=True))
    return median(ratios), ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]


def dropped(queues: Iterable[tuple[float, Any]], rate: float) -> int:
    """What the send queues (``TelemetryQueue``) of the runs at sample rate ``rate`` dropped."""
    return sum(queue.dropped for sample_rate, queue in queues if sample_rate == rate)


OFF: dict[str, Any] = {"traces": {"enabled": False}, "metrics": {"enabled": False}}
Results = dict[str, tuple[dict[str, list[float]], dict[str, list[float]]]]


def compare_provider(
    blocks: dict[str, dict[str, Any]], settled: Callable[[], bool], tasks: int, rounds: int
) -> Results:
    """Each observability block (one named ``off``) in alternating rounds of ``tasks`` async
    tasks at concurrency 100, on no-op tasks and on 1 ms tasks, in a scratch database; each
    run timed from the first claim until ``settled()`` after the last completion."""
    from rhythm_core import Worker, configure

    from .noop_tasks import noop_async, sleep_1ms

    results: Results = {}
    with scratch_database() as url:
        configure(url)

        def run(function: Any, block: dict[str, Any]) -> float:
            truncate(url)
            enqueue(function, tasks)
            worker = Worker(function.queue_name, database_url=url, concurrency=100,
                            poll_interval=0.05, observability=block)
            return tasks / asyncio.run(run_until_completed(
                worker, url, function.queue_name, tasks, settled=settled))

        for label, function in (("no-op", noop_async), ("1 ms", sleep_1ms)):
            print(f"-- {label} tasks", file=sys.stderr)
            variants = {name: functools.partial(run, function, block)
                        for name, block in blocks.items()}
            results[label] = alternate(variants, rounds, tasks)
    return results


def print_comparison(results: Results, provider: str, tasks: int, rounds: int, note: str) -> None:
    """The Markdown table of ``<provider>-default`` and ``<provider>-100`` against ``off``."""
    print(f"\n{tasks} async tasks a run, concurrency 100, {rounds} alternating rounds, {note}\n")
    print("| tasks | comparison | A tasks/s | B tasks/s | ratio A/B (median of rounds) "
          "| middle half | CPU µs/execution A - B |")
    print("|---|---|---:|---:|---:|---|---:|")
    for label, (rates, cpu) in results.items():
        for a in (f"{provider}-default", f"{provider}-100"):
            ratio, low, high = paired_ratios(rates, a, "off")
            print(f"| {label} | {a} / off | {median(rates[a]):,.0f} | {median(rates['off']):,.0f} "
                  f"| {ratio:.3f} | {low:.3f}-{high:.3f} "
                  f"| {median(cpu[a]) - median(cpu['off']):+.1f} |")
    for label, (rates, _) in results.items():
        runs = "; ".join(f"{name} " + " ".join(f"{r:,.0f}" for r in rows)
                         for name, rows in rates.items())
        print(f"\nEvery run, {label} (tasks/s, round order): {runs}")
