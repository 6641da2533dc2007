"""What rhythm-otel costs: throughput with the otel provider exporting over OTLP/gRPC to a
receiver in another process, against observability off, alternating runs in one process.

    python -m bench.otel_overhead [--tasks 10000] [--rounds 5]

Needs ``pip install -e "plugins/rhythm-otel[test]"`` (the receiver is the tests' OTLP sink).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import rhythm_core
from rhythm_core import Worker, plugins

from .common import enqueue, machine, median, run_until_completed, scratch_database, truncate
from .noop_tasks import noop_async

SINK = Path(__file__).resolve().parent.parent / "plugins/rhythm-otel/tests/otlp_sink.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    sink = subprocess.Popen([sys.executable, str(SINK)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    endpoint = f"http://127.0.0.1:{sink.stdout.readline().strip()}"

    def otel(rate: float) -> dict[str, Any]:
        return {"provider": "otel",
                "traces": {"enabled": True, "sample_rate": rate, "endpoint": endpoint},
                "metrics": {"enabled": True, "endpoint": endpoint}}

    blocks: dict[str, dict[str, Any]] = {
        "off": {"traces": {"enabled": False}, "metrics": {"enabled": False}},
        "otel-default": otel(0.1),
        "otel-100": otel(1.0),
    }
    rates: dict[str, list[float]] = {name: [] for name in blocks}
    cpu: dict[str, list[float]] = {name: [] for name in blocks}
    print(f"machine: {machine()}; OTLP/gRPC receiver in another process at {endpoint}")
    try:
        with scratch_database() as url:
            rhythm_core.configure(url)
            for round_no in range(1, args.rounds + 1):
                order = list(blocks) if round_no % 2 else list(reversed(blocks))
                for name in order:
                    plugins.activate(plugins.DISABLED)
                    gc.collect()
                    truncate(url)
                    enqueue(noop_async, args.tasks)
                    worker = Worker(noop_async.queue_name, database_url=url, concurrency=100,
                                    poll_interval=0.05, observability=blocks[name])
                    began = time.process_time()
                    seconds = asyncio.run(
                        run_until_completed(worker, url, noop_async.queue_name, args.tasks))
                    cpu[name].append((time.process_time() - began) / args.tasks * 1e6)
                    rates[name].append(args.tasks / seconds)
                    print(f"round {round_no} {name:>12}: {rates[name][-1]:,.0f} tasks/s",
                          file=sys.stderr, flush=True)
    finally:
        sink.stdin.close()
        received = sink.stdout.readline().strip()
        sink.wait(30)
    print(f"\n{args.tasks} no-op async tasks, concurrency 100, {args.rounds} alternating "
          f"rounds; spans received by the sink: {received}\n")
    print("| comparison | A tasks/s | B tasks/s | ratio A/B (median of rounds) | CPU µs/execution "
          "A - B |")
    print("|---|---:|---:|---:|---:|")
    for a, b in (("otel-default", "off"), ("otel-100", "off")):
        ratios = [x / y for x, y in zip(rates[a], rates[b], strict=True)]
        print(f"| {a} / {b} | {median(rates[a]):,.0f} | {median(rates[b]):,.0f} "
              f"| {median(ratios):.3f} | {median(cpu[a]) - median(cpu[b]):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
