"""``rhythm worker`` processes for end-to-end plugin tests: real processes, so that a test
can SIGTERM one (nothing may be lost) or SIGKILL one mid-task (another takes over)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .scenario import QUEUE


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM (servers flush what they hold), then wait; SIGKILL if it does not end."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class WorkerProcess:
    """One worker process running :mod:`rhythm_core.testing.scenario`; its output is in
    ``log``."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def signal(self, number: int) -> None:
        self.proc.send_signal(number)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def spawner(
    database_url: str, logs: Path
) -> tuple[Callable[[Mapping[str, str]], WorkerProcess], Callable[[], None]]:
    """``start(env, modules, queues, options)`` starts a scenario worker with ``env`` over
    this process's environment (importing ``modules`` too, serving ``queues`` too, with more
    ``rhythm worker`` options) and returns once it claims; ``stop_all()`` SIGKILLs those
    still running."""
    started: list[WorkerProcess] = []

    def start(
        env: Mapping[str, str],
        modules: Sequence[str] = (),
        queues: Sequence[str] = (),
        options: Sequence[str] = (),
    ) -> WorkerProcess:
        log = logs / f"worker-{len(started)}.log"
        environment = {**os.environ, "RHYTHM_DATABASE_URL": database_url, **env}
        args = [
            "-m",
            "rhythm_core.testing.scenario",
            *(f"--module={module}" for module in modules),
            "-q",
            QUEUE,
            *(f"--queue={queue}" for queue in queues),
            "--heartbeat-interval",
            "0.2",
            "--dead-after",
            "1",
            "--poll-interval",
            "0.2",
            *options,
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rhythm_core", "worker", *args],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, log)
        started.append(worker)
        deadline = time.monotonic() + 30
        while "claiming from" not in worker.output():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{worker.output()}")
            time.sleep(0.05)
        return worker

    def stop_all() -> None:
        for worker in started:
            if worker.proc.poll() is None:
                worker.signal(signal.SIGKILL)
                worker.wait()

    return start, stop_all
