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

py-spy sees only threads that run Python. A second table therefore gives each thread's CPU
time as the kernel counts it (``/proc/self/task/*/schedstat``, read every 50 ms so that
threads that end are counted too), native threads included: ddtrace's writer and its tokio
runtime, gRPC's. Its window is the run plus :data:`SETTLE` seconds after it, in which
background threads send what they still hold.
Needs py-spy (``pip install py-spy``) and permission to trace this process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..common import OFF, GcClock, enqueue, machine, run_until_completed, scratch_database, truncate

RATE = 1000  # samples a second per thread
SETTLE = 2.0  # seconds after a run in which exporters' threads finish sending
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


class ThreadClock:
    """CPU nanoseconds of each thread of this process since :meth:`start`, by thread name
    (a Python thread's ``threading`` name, else the kernel's: native threads name
    themselves there)."""

    def __init__(self) -> None:
        self._first: dict[int, int] = {}
        self._last: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-clock", daemon=True)

    def start(self) -> None:
        self._read()
        self._first = {tid: ns for tid, (_, ns) in self._last.items()}
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._read()

    def _read(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for entry in os.listdir("/proc/self/task"):
            tid = int(entry)
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    ns = int(f.read().split()[0])
                with open(f"/proc/self/task/{tid}/comm") as f:
                    comm = f.read().strip()
            except OSError:  # ended meanwhile
                continue
            self._last[tid] = (names.get(tid) or self._last.get(tid, (comm, 0))[0], ns)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        self._read()
        own = self._thread.native_id
        by_name: collections.Counter[str] = collections.Counter()
        for tid, (name, ns) in self._last.items():
            if tid != own:
                by_name[name] += ns - self._first.get(tid, 0)
        return dict(by_name)


def profiled_run(url: str, block: dict[str, Any], tasks: int, out: Path,
                 gil: bool) -> tuple[dict[str, int], GcClock]:
    """Drain ``tasks`` no-op tasks with ``block`` while py-spy samples this process; returns
    each thread's CPU nanoseconds and the garbage collector's clock."""
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
    clock, collections_ = ThreadClock(), GcClock()
    gc.collect()  # the previous run's garbage is not this one's
    clock.start()
    gc.callbacks.append(collections_)
    try:
        asyncio.run(run_until_completed(worker, url, noop_async.queue_name, tasks))
        time.sleep(SETTLE)
    finally:
        gc.callbacks.remove(collections_)
    cpu = clock.stop()
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    return cpu, collections_


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
    parser.add_argument("--traces", default="",
                        help="traces endpoint (default: the OTLP receiver, Datadog's test "
                             "agent or a UDP port that reads, by provider)")
    parser.add_argument("--metrics", default="", help="metrics endpoint (default: likewise)")
    args = parser.parse_args(argv)
    from ..sinks import OtlpReceiver, Sink, datadog_agent

    # peers that answer as the real ones do, so that no exporter waits on a silent port
    sink = Sink()  # UDP and TCP ports that read what arrives: X-Ray, EMF, DogStatsD
    stop: list[Any] = [sink.stop]
    if args.provider == "otel":
        receiver = OtlpReceiver()
        stop.append(receiver.stop)
        endpoints = {"traces": receiver.endpoint, "metrics": receiver.endpoint}
    elif args.provider == "datadog":
        agent = datadog_agent()
        stop.append(agent.stop)
        endpoints = {"traces": agent.url, "metrics": f"127.0.0.1:{sink.udp_port}"}
    else:
        endpoints = {"traces": f"127.0.0.1:{sink.udp_port}",
                     "metrics": f"tcp://127.0.0.1:{sink.tcp_port}"}
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
                cpu, collected = profiled_run(url, block, args.tasks, workdir / f"{label}.txt",
                                              not args.all_threads)
                runs[label] = (per_layer(workdir / f"{label}.txt"), cpu, collected)
    finally:
        for stopping in stop:
            stopping()
    (off, off_total), off_cpu, off_gc = runs["off"]
    (on, on_total), on_cpu, on_gc = runs[args.provider]
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
    print(f"\nCPU time of every thread as the kernel counts it, the run and {SETTLE:g} s after\n")
    print("| thread | off µs/execution | provider µs/execution | added |")
    print("|---|---:|---:|---:|")
    per_execution = 1e-3 / args.tasks
    for name in sorted(set(off_cpu) | set(on_cpu),
                       key=lambda n: -(on_cpu.get(n, 0) - off_cpu.get(n, 0))):
        a, b = off_cpu.get(name, 0) * per_execution, on_cpu.get(name, 0) * per_execution
        if max(a, b) >= 0.5:
            print(f"| {name} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
    a, b = sum(off_cpu.values()) * per_execution, sum(on_cpu.values()) * per_execution
    print(f"| all | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
    print("\nGarbage collection (wall time in the collector, within the figures above), "
          "µs per execution, and collections by generation:")
    for label, collected in (("off", off_gc), (args.provider, on_gc)):
        print(f"- {label}: {collected.seconds * 1e6 / args.tasks:.1f} µs; "
              f"{collected.count[0]} / {collected.count[1]} / {collected.count[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
