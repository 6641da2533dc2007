"""``rhythm worker`` processes for the tests, with the otel provider sending to a sink."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent  # plugins/rhythm-otel: tests.* importable


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "RHYTHM_OBSERVABILITY_PROVIDER": "otel",
        "RHYTHM_TRACING_ENABLED": "true",
        "RHYTHM_TRACES_SAMPLE_RATE": "1.0",
        "RHYTHM_TRACING_ENDPOINT": endpoint,
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_METRICS_ENDPOINT": endpoint,
        "RHYTHM_METRICS_INTERVAL": "0.5",
        **extra,
    }


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def signal(self, number: int) -> None:
        self.proc.send_signal(number)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn(rhythm_database_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str]) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        environment = {
            **os.environ,
            "RHYTHM_DATABASE_URL": rhythm_database_url,
            "PYTHONPATH": str(HERE),
            **env,
        }
        args = ["-m", "tests.scenario_app", "-q", "otel-scenario", "--heartbeat-interval",
                "0.2", "--dead-after", "1", "--poll-interval", "0.2"]
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "rhythm_core", "worker", *args],
                                    cwd=HERE, env=environment, stdout=out,
                                    stderr=subprocess.STDOUT)
        worker = WorkerProcess(proc, log)
        started.append(worker)
        deadline = time.monotonic() + 30
        while "claiming from" not in worker.output():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{worker.output()}")
            time.sleep(0.05)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.signal(signal.SIGKILL)
            worker.wait()
