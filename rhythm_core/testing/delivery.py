"""The delivery checks every backend plugin shows, run the same way for all: nothing lost when
a worker is stopped with SIGTERM the moment its work is done, and nothing held up when the
backend is not there."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import scenario
from .failover import wait_until
from .processes import WorkerProcess

StartWorker = Callable[[Mapping[str, str]], WorkerProcess]


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
    began = time.monotonic()
    scenario.noop.queue_many([()] * count)
    wait_until(lambda: completed(db) >= count, "executions did not all complete", 2 * within)
    assert time.monotonic() - began < within, worker.output()  # nothing waited on the backend
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()  # and the stop is not held up either
    return worker
