"""What rhythm-otel costs: throughput with the otel provider exporting over OTLP/gRPC to a
receiver in another process, against observability off, alternating runs in one process.

    python -m bench.otel_overhead [--tasks 10000] [--rounds 5]

Needs ``pip install -e "plugins/rhythm-otel[test]"`` (the receiver is the tests' OTLP sink).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import rhythm_core
from rhythm_core import Worker

from .common import (
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
    print(f"machine: {machine()}; OTLP/gRPC receiver in another process at {endpoint}")
    try:
        with scratch_database() as url:
            rhythm_core.configure(url)

            def run(block: dict[str, Any]) -> float:
                truncate(url)
                enqueue(noop_async, args.tasks)
                worker = Worker(noop_async.queue_name, database_url=url, concurrency=100,
                                poll_interval=0.05, observability=block)
                return args.tasks / asyncio.run(
                    run_until_completed(worker, url, noop_async.queue_name, args.tasks))

            variants = {name: functools.partial(run, block) for name, block in blocks.items()}
            rates, cpu = alternate(variants, args.rounds, args.tasks)
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
        ratio, _, _ = paired_ratios(rates, a, b)
        print(f"| {a} / {b} | {median(rates[a]):,.0f} | {median(rates[b]):,.0f} "
              f"| {ratio:.3f} | {median(cpu[a]) - median(cpu[b]):+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
