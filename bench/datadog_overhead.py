"""What rhythm-datadog costs: throughput with the datadog provider sending spans to Datadog's
test agent and metrics to a DogStatsD listener (both on loopback, each in a process of its
own), against observability off, alternating runs in one process, on no-op and on 1 ms
tasks; and what importing ddtrace and the DogStatsD client costs a worker at start.

    python -m bench.datadog_overhead [--tasks 10000] [--rounds 5]

Needs ``pip install -e plugins/rhythm-datadog``; the test agent is installed into its own
virtual environment under ``.cache/`` on first use, as in the plugin's tests.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from typing import Any

from rhythm_core import testing

from .common import OFF, compare_provider, dropped, machine, print_comparison
from .sinks import Sink, datadog_agent

IMPORTS = "import ddtrace.trace, ddtrace.propagation.http, datadog.dogstatsd.base"


def import_seconds(imports: str = IMPORTS, times: int = 7) -> tuple[float, float]:
    """Median seconds to run ``imports`` (by default ddtrace and the DogStatsD client) in a
    fresh interpreter, and to start a bare interpreter, for comparison."""
    def timed(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; "
             "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])

    return (statistics.median(timed(imports) for _ in range(times)),
            statistics.median(timed("pass") for _ in range(times)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    agent = datadog_agent()
    sink = Sink()  # DogStatsD, read in another process (the tests' listener is a thread)
    statsd_port = sink.udp_port

    def datadog(rate: float) -> dict[str, Any]:
        return {"provider": "datadog",
                "traces": {"enabled": True, "sample_rate": rate, "endpoint": agent.url},
                "metrics": {"enabled": True, "endpoint": f"127.0.0.1:{statsd_port}"}}

    queues: dict[int, tuple[float, Any]] = {}  # each run's send queue, for what it dropped

    def flushed() -> bool:  # the timed window includes handing everything over and sending
        import rhythm_datadog

        backend = rhythm_datadog.plugin.backend
        if backend is not None:
            rate = testing.active().config.traces.sample_rate
            queues[id(backend)] = (rate, backend.sender)
        return rhythm_datadog.plugin.flush(60)

    blocks = {"off": OFF, "datadog-default": datadog(0.1), "datadog-100": datadog(1.0)}
    print(f"machine: {machine()}; Datadog test agent at {agent.url}, DogStatsD read on "
          f"127.0.0.1:{statsd_port} by another process")
    try:
        results = compare_provider(blocks, flushed, args.tasks, args.rounds)
    finally:
        agent.stop()
        arrived = sink.stop()
    print_comparison(results, "datadog", args.tasks, args.rounds,
                     f"each timed from the first claim until the plugin's queue, ddtrace's "
                     f"writer and DogStatsD were flushed; DogStatsD lines received: "
                     f"{arrived['lines']:,} in {arrived['datagrams']:,} datagrams; spans and "
                     f"points dropped because the plugin's queue was full: "
                     f"{dropped(queues.values(), 0.1):,} at the default rate, "
                     f"{dropped(queues.values(), 1.0):,} at 100%")
    imported, bare = import_seconds()
    print(f"\nImporting ddtrace.trace, ddtrace.propagation.http and the DogStatsD client in a "
          f"fresh interpreter: {imported * 1000:.0f} ms (median of 7; `pass` alone: "
          f"{bare * 1000:.2f} ms). A worker pays it once, at start, only with the datadog "
          f"provider selected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
