"""Where a provider's added CPU goes, per execution: py-spy samples of one worker draining
no-op tasks, with observability off and then with the provider, grouped by thread and by
layer, every thread of the process counted.

    python -m bench.dev.provider_profile --provider datadog [--rate 0.1] [--tasks 20000]

Each run drains ``--tasks`` async no-op tasks at concurrency 100 in a scratch database while
``py-spy record --threads --gil --rate 1000`` samples this process: the thread holding the
GIL at each sample, so that each thread's share is the Python it ran (a thread waiting for
the GIL would otherwise look busy; native code that releases the GIL, such as socket sends
and libpq, is not counted). ``--all-threads`` samples every thread that is not idle.
A sample's layer is the package of its innermost frame that has one: the core layer
(``rhythm_core.observability``), the rest of the engine (``rhythm_core``), the plugin
(``rhythm_<provider>``), the backend library (ddtrace, aws_xray_sdk, opentelemetry,
grpc...), psycopg, asyncio, or other; a plugin's send thread that is handing the GIL to
the event loop is "yielding the GIL", time it waits rather than works. The table gives
microseconds of sampled thread time per execution, the provider's run minus the off run.
Sampling costs the process some time of its own; compare layers, not the total, with
``bench.*_overhead``.
Needs py-spy (``pip install py-spy``) and permission to trace this process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..common import OFF, enqueue, machine, run_until_completed, scratch_database, truncate

RATE = 1000  # samples a second per thread
LAYERS = (
    ("rhythm_core/observability", "core layer"),
    ("rhythm_core", "engine"),
    ("rhythm_otel", "plugin"),
    ("rhythm_datadog", "plugin"),
    ("rhythm_xray", "plugin"),
    ("ddtrace", "library"),
    ("datadog", "library"),
    ("aws_xray_sdk", "library"),
    ("aws_embedded_metrics", "library"),
    ("opentelemetry", "library"),
    ("grpc", "library"),
    ("google/protobuf", "library"),
    ("psycopg", "psycopg"),
    ("asyncio", "asyncio"),
)


def layer_of(frames: list[str]) -> str:
    """The layer of the innermost frame that belongs to a known package (a builtin or a
    generated ``__init__`` counts for its caller); a send thread handing the GIL to the
    event loop (``let_others_run``) is waiting, not working, and is told apart."""
    if any(frame.startswith("let_others_run ") for frame in frames):
        return "yielding the GIL"
    for frame in reversed(frames):
        for marker, layer in LAYERS:
            if f"/{marker}/" in frame or f"({marker}/" in frame:
                return layer
    return "other"


def blocks(provider: str, rate: float, endpoints: dict[str, str]) -> dict[str, Any]:
    traces = {"enabled": True, "sample_rate": rate, "endpoint": endpoints["traces"]}
    return {"provider": provider, "traces": traces,
            "metrics": {"enabled": True, "endpoint": endpoints["metrics"]}}


def profiled_run(url: str, block: dict[str, Any], tasks: int, out: Path, gil: bool) -> float:
    """Drain ``tasks`` no-op tasks with ``block`` while py-spy samples this process; returns
    the seconds it took."""
    from rhythm_core import Worker

    from ..noop_tasks import noop_async

    truncate(url)
    enqueue(noop_async, tasks)
    worker = Worker(noop_async.queue_name, database_url=url, concurrency=100,
                    poll_interval=0.05, observability=block)
    beside = Path(sys.executable).with_name("py-spy")  # installed in the same environment
    command = [str(beside) if beside.exists() else "py-spy", "record", "--pid",
               str(os.getpid()), "--threads", "--rate", str(RATE), "--format", "raw",
               "--output", str(out), "--nonblocking", *(["--gil"] if gil else [])]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attached
    took = asyncio.run(run_until_completed(worker, url, noop_async.queue_name, tasks))
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    return float(took)


def per_layer(stacks: Path) -> tuple[dict[tuple[str, str], int], int]:
    """Samples by (thread, layer) from py-spy's raw output (``frames count`` lines)."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in stacks.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0].partition("): ")[2].strip() or "unnamed"
        counts[(thread, layer_of(frames[1:]))] += int(n)
    return dict(counts), sum(counts.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", required=True, choices=("otel", "datadog", "xray"))
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--all-threads", action="store_true",
                        help="sample every thread that is not idle, not only the one holding "
                             "the GIL (a thread waiting for the GIL then counts too)")
    parser.add_argument("--traces", default="", help="traces endpoint (default: a sink)")
    parser.add_argument("--metrics", default="", help="metrics endpoint (default: a sink)")
    args = parser.parse_args(argv)
    from ..sinks import Sink

    sink = Sink()
    endpoints = {
        "otel": {"traces": f"http://127.0.0.1:{sink.tcp_port}",
                 "metrics": f"http://127.0.0.1:{sink.tcp_port}"},
        "datadog": {"traces": f"http://127.0.0.1:{sink.tcp_port}",
                    "metrics": f"127.0.0.1:{sink.udp_port}"},
        "xray": {"traces": f"127.0.0.1:{sink.udp_port}",
                 "metrics": f"tcp://127.0.0.1:{sink.tcp_port}"},
    }[args.provider]
    endpoints = {"traces": args.traces or endpoints["traces"],
                 "metrics": args.metrics or endpoints["metrics"]}
    workdir = Path(tempfile.mkdtemp(prefix="rhythm-profile-"))
    try:
        with scratch_database() as url:
            from rhythm_core import configure

            configure(url)
            runs = {}
            for label, block in (("off", OFF), (args.provider,
                                                blocks(args.provider, args.rate, endpoints))):
                took = profiled_run(url, block, args.tasks, workdir / f"{label}.txt",
                                    not args.all_threads)
                runs[label] = (per_layer(workdir / f"{label}.txt"), took)
    finally:
        sink.stop()
    (off, off_total), _ = runs["off"]
    (on, on_total), _ = runs[args.provider]
    scale = 1e6 / RATE / args.tasks  # µs of sampled thread time per execution, per sample
    sampled = "every thread not idle" if args.all_threads else "the thread holding the GIL"
    print(f"machine: {machine()}; {args.provider} at sample rate {args.rate:g}, "
          f"{args.tasks:,} no-op tasks a run, py-spy at {RATE} Hz, {sampled}\n")
    print("| thread | layer | off µs/execution | provider µs/execution | added |")
    print("|---|---|---:|---:|---:|")
    for key in sorted(set(off) | set(on), key=lambda k: -(on.get(k, 0) - off.get(k, 0))):
        a, b = off.get(key, 0) * scale, on.get(key, 0) * scale
        if max(a, b) >= 0.5:
            print(f"| {key[0]} | {key[1]} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
    print(f"| all | all | {off_total * scale:.1f} | {on_total * scale:.1f} | "
          f"{(on_total - off_total) * scale:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
