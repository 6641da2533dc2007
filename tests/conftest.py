"""Fixtures: a real PostgreSQL database per test run, workers in threads and in processes.

The database is ``RHYTHM_TEST_DATABASE_URL`` when set (a fresh database is created on that
server and dropped at the end), else an embedded server started in a temporary directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rhythm_core import Worker, testing
from rhythm_core.observability import manager
from rhythm_core.observability.manager import Observability
from rhythm_core.testing import failover

ROOT = Path(__file__).resolve().parent.parent

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS test_runs (
    seq bigserial PRIMARY KEY,
    execution_id uuid,
    function_name text,
    attempt int,
    worker_id text,
    note text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


@pytest.fixture(scope="session")
def database_url(rhythm_database_url: str) -> Iterator[str]:
    """The run's database, with a table the test functions write what they did into."""
    with psycopg.connect(rhythm_database_url, autocommit=True) as conn:
        conn.execute(RUNS_TABLE)
    yield rhythm_database_url


@pytest.fixture(autouse=True)
def db(database_url: str, rhythm_db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """A connection to the run's database, emptied before each test."""
    rhythm_db.execute("TRUNCATE test_runs")
    return rhythm_db


@pytest.fixture
def start_worker(rhythm_worker: Callable[..., Worker]) -> Callable[..., Worker]:
    """Start an in-process worker (in a thread) with test-friendly timings."""
    return rhythm_worker


class WorkerProcess:
    """A ``rhythm worker`` subprocess; its output goes to a log file shown on failure."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rhythm_core", "worker", *args],
            cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
        )

    def wait_started(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while b"claiming from" not in self.log.read_bytes():
            assert self.proc.poll() is None, f"worker exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"worker did not start:\n{self.output()}"
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._out.close()


@pytest.fixture
def spawn_worker(database_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    procs: list[WorkerProcess] = []

    def spawn(
        module: str, *queues: str, extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        args = ["-m", module]
        for queue in queues:
            args += ["-q", queue]
        args += ["--heartbeat-interval", "0.2", "--dead-after", "1", "--poll-interval", "0.2"]
        args += extra or []
        environment = {
            **os.environ, "RHYTHM_DATABASE_URL": database_url,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            **(env or {}),
        }
        proc = WorkerProcess(args, tmp_path / f"worker-{len(procs)}.log", environment)
        procs.append(proc)
        proc.wait_started()
        return proc

    yield spawn
    for proc in procs:
        proc.stop()


@pytest.fixture
def observe() -> Iterator[Callable[..., Observability]]:
    """Configure this process's observability for one test; restored afterwards."""
    previous = manager._active
    made: list[Observability] = []

    def configure(block: dict[str, Any]) -> Observability:
        observability = testing.from_block(block)
        testing.activate(observability)
        made.append(observability)
        return observability

    yield configure
    for observability in made:
        observability.shutdown(1.0)
    testing.activate(previous)  # type: ignore[arg-type]


def wait_until(check: Callable[[], Any], timeout: float = 20, message: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` on timeout."""
    return failover.wait_until(check, f"timed out after {timeout}s: {message or check}", timeout)


def runs(conn: psycopg.Connection[Any], note: str | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``test_runs`` (execution_id, function, attempt, worker, note, at) in order."""
    sql = "SELECT execution_id::text, function_name, attempt, worker_id, note, at FROM test_runs"
    if note is not None:
        return conn.execute(sql + " WHERE note = %s ORDER BY seq", (note,)).fetchall()
    return conn.execute(sql + " ORDER BY seq").fetchall()
