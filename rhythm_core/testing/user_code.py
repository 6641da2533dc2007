"""User code that calls out through the application's own instrumentation, for a plugin's
tests of ``rhythm_span_activate`` (worker processes serve :data:`QUEUE`).

The application module a test's worker imports besides this one sets up its backend's
instrumentation (an SDK provider and instrumentors, ``ddtrace.patch``, the X-Ray SDK's
``patch``), sets :data:`open_span` to open a span of its own tracer, and may replace
:data:`also` (by default a query through psycopg, which the backends instrument).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rhythm_core import task, workflow

if TYPE_CHECKING:
    from .loopback import HeaderServer

QUEUE = "rhythm-user-code"


def query() -> None:
    """One query through psycopg, on the worker's database."""
    import psycopg

    # through a cursor of the connection connect() returned: aws-xray-sdk wraps that object
    # and traces its cursors, not the execute() shortcut nor what ``with`` hands back
    conn = psycopg.connect(os.environ["RHYTHM_DATABASE_URL"])
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
    finally:
        conn.close()


# set by the application module: what it does besides the HTTP call, and its own spans
also: Callable[[], object] = query
open_span: Callable[[str], AbstractContextManager[object]] = nullcontext


def _calls_out(url: str) -> int:
    import requests

    response = requests.get(url, timeout=10)
    also()
    return response.status_code


@task(queue=QUEUE, retries=0)
def calls_out(url: str) -> int:
    """An HTTP GET of ``url`` and :data:`also`, from a sync function (a pool thread)."""
    return _calls_out(url)


@task(queue=QUEUE, retries=0)
async def calls_out_async(url: str) -> int:
    """The same from an async function, in the execution's own asyncio task."""
    return _calls_out(url)


@task(queue=QUEUE, retries=0)
async def step(x: int) -> int:
    return x + 1


@workflow(queue=QUEUE)
async def opens_around_a_step(x: int) -> int:
    """Opens an application span before its one step and one after it: each must reach the
    backend once, the first under the pass that first ran it, the second under the pass
    after the step finished."""
    with open_span("before-step"):
        pass
    result = await step.run(x)
    with open_span("after-step"):
        pass
    return result


@dataclass(frozen=True, slots=True)
class CalledOut:
    """One execution of :func:`calls_out` or :func:`calls_out_async`, once it completed."""

    function: str
    execution_id: str
    trace_id: str  # the row's
    headers: dict[str, str]  # what its HTTP call sent to the loopback server


def trace_of(db: Any, execution_id: str) -> str:
    """The ``trace_id`` column of an execution's row."""
    (trace_id,) = db.execute(
        "SELECT trace_id FROM executions WHERE id = %s", (execution_id,)
    ).fetchone()
    return str(trace_id)


def serve(spawn: Callable[..., Any], env: Mapping[str, str], app: Path) -> None:
    """Start a worker process on :data:`QUEUE` (``spawn`` is the ``rhythm_worker_process``
    fixture) with ``env``, importing the application module ``app``, a file of the plugin's
    tests that sets up its backend's instrumentation."""
    path = os.pathsep.join([str(app.parent), os.environ.get("PYTHONPATH", "")])
    spawn({**env, "PYTHONPATH": path}, modules=[app.stem], queues=[QUEUE])


def run_workflow(db: Any, timeout: float = 30) -> tuple[str, str]:
    """Run :func:`opens_around_a_step` to completion: its execution id and trace id."""
    import rhythm_core

    execution_id = opens_around_a_step.queue(1)
    assert rhythm_core.wait(execution_id, timeout=timeout) == 2
    return execution_id, trace_of(db, execution_id)


def call_out(db: Any, server: HeaderServer, timeout: float = 30) -> list[CalledOut]:
    """Run :func:`calls_out`, then :func:`calls_out_async`, each calling ``server``; each
    must complete having made exactly one request."""
    import rhythm_core

    done = []
    for function in (calls_out, calls_out_async):
        sent = len(server.received)
        execution_id = function.queue(server.url)
        assert rhythm_core.wait(execution_id, timeout=timeout) == 200, function.name
        (headers,) = server.received[sent:]
        done.append(CalledOut(function.name, execution_id, trace_of(db, execution_id), headers))
    return done
