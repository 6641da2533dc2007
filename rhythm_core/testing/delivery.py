"""The delivery checks every backend plugin shows, run the same way for all: nothing lost when
a worker is stopped with SIGTERM the moment its work is done, nothing held up when the
backend is not there, and a stop (or a one-shot enqueueing script) that ends on time when
the backend is down or hangs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..observability.manager import EXIT_FLUSH
from . import scenario
from .failover import wait_until
from .processes import WorkerProcess

StartWorker = Callable[..., WorkerProcess]
# Seconds a process needs past its stop to exit (the interpreter's own teardown), allowed on
# top of a worker's shutdown_timeout and of EXIT_FLUSH, the seconds a process that only
# enqueued gives its plugins at exit.
EXIT_SLACK = 1.0


def completed(db: Any) -> int:
    """Executions completed so far, in the test's database."""
    return int(
        db.execute("SELECT count(*) FROM executions WHERE status = 'completed'").fetchone()[0]
    )


def run_then_sigterm(
    start_worker: StartWorker, env: Mapping[str, str], db: Any, count: int = 500
) -> set[tuple[str, str]]:
    """Queue ``count`` no-op executions, run them in a worker process started with ``env``,
    SIGTERM it as soon as they are done (whatever the plugin still holds must be sent before
    it exits 0), and return the rows' ``(trace_id, span_id)``: each must have reached the
    backend as an execution span ``task.<noop>``."""
    scenario.noop.queue_many([()] * count)
    worker = start_worker(env)
    wait_until(lambda: completed(db) >= count, worker.output(), timeout=60)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    rows = {(str(t), str(s)) for t, s in db.execute("SELECT trace_id, span_id FROM executions")}
    assert len(rows) == count
    return rows


def run_without_backend(
    start_worker: StartWorker,
    env: Mapping[str, str],
    db: Any,
    count: int = 1000,
    within: float = 30.0,
) -> WorkerProcess:
    """With ``env`` pointing the plugin where nothing listens, ``count`` executions complete
    within ``within`` seconds and a SIGTERM stops the worker cleanly; returns the worker, whose
    output the caller may check (failures logged once)."""
    worker = start_worker(env)
    ran, _ = _drain_then_stop(worker, db, count, 2 * within)
    assert ran < within, worker.output()  # nothing waited on the backend
    return worker


def stop_with_backend_down(
    start_worker: StartWorker,
    env: Mapping[str, str],
    db: Any,
    shutdown_timeout: float = 3.0,
    count: int = 200,
) -> WorkerProcess:
    """With ``env`` pointing the plugin at a backend that is down (nothing listens, or a
    listener that accepts and never answers), run ``count`` executions and SIGTERM the
    worker, which must exit within ``shutdown_timeout`` (and :data:`EXIT_SLACK`) whatever the
    backend does; returns the worker, whose output says once what was not sent."""
    worker = start_worker(env, options=["--shutdown-timeout", str(shutdown_timeout)])
    _, took = _drain_then_stop(worker, db, count, 60)
    assert took <= shutdown_timeout + EXIT_SLACK, (
        f"{took:.1f}s after SIGTERM:\n{worker.output()[-3000:]}"
    )
    return worker


def _drain_then_stop(
    worker: WorkerProcess, db: Any, count: int, timeout: float
) -> tuple[float, float]:
    """Queue ``count`` no-op executions, wait until they completed, SIGTERM the worker and
    wait for it to exit 0: the seconds until they completed, and from SIGTERM to the exit."""
    began = time.monotonic()
    scenario.noop.queue_many([()] * count)
    wait_until(lambda: completed(db) >= count, "executions did not all complete", timeout)
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.output()  # the stop is not held up either
    return signalled - began, time.monotonic() - signalled


ENQUEUE_ONLY = """
import sys, time
import rhythm_core
from rhythm_core.testing import scenario
rhythm_core.configure(sys.argv[1])
scenario.noop.queue()
print(time.time(), flush=True)
"""


def enqueue_then_exit(env: Mapping[str, str], database_url: str) -> str:
    """A one-shot script that enqueues one execution with the observability in ``env`` and
    exits, within :data:`EXIT_FLUSH` (and :data:`EXIT_SLACK`) of its enqueue being done: a
    backend that is down must not hold it for more than a few seconds. Returns its output."""
    done = subprocess.run(
        [sys.executable, "-c", ENQUEUE_ONLY, database_url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    ended = time.time()
    assert done.returncode == 0, done.stderr
    took = ended - float(done.stdout.split()[0])
    assert took <= EXIT_FLUSH + EXIT_SLACK, f"{took:.1f}s after enqueueing:\n{done.stderr}"
    return done.stderr
