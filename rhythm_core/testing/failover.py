"""The workflow scenario every backend plugin shows, driven and checked the same way for all.

An application span enqueues :func:`~rhythm_core.testing.scenario.three_tasks`; a worker
process runs ``plain`` and ``flaky_once`` (which fails once and is retried) and starts
``held``; it is SIGKILLed mid-task and a second worker takes over. :func:`drive` does that;
:func:`check` asserts, on the spans the backend received (read back in the core's terms as
:class:`~rhythm_core.testing.conformance.ReceivedSpan`), that it is one trace whose ids are
the rows', with the right parents, an error then a success for the retried task, and the
killed attempt continued under the same execution span.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import rhythm_core

from . import scenario
from .conformance import ReceivedSpan
from .processes import WorkerProcess

RESULT = [10, 200, "released"]
ROWS = (
    "SELECT id::text, type, function_name, trace_id, span_id, trace_context, parent_id "
    "FROM executions ORDER BY created_at"
)


def wait_until(what: Callable[[], Any], message: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def drive(
    start_worker: Callable[[Mapping[str, str]], WorkerProcess],
    env: Mapping[str, str],
    marker: str,
    execution_id: str,
    finished_work_sent: Callable[[], bool],
) -> None:
    """Run the enqueued scenario to its end across a SIGKILL. ``finished_work_sent`` says
    when the backend holds the spans of what was done before the kill (see
    :func:`finished_work_sent`; a SIGKILL loses what is still queued for export, as a real
    crash would)."""
    first = start_worker(env)
    started = Path(marker + ".started")
    wait_until(
        lambda: started.exists() and started.read_text().strip(),
        f"held never started:\n{first.output()}",
    )
    wait_until(finished_work_sent, "the spans of the work before the kill never arrived")
    first.signal(signal.SIGKILL)
    first.wait()
    second = start_worker(env)
    Path(marker).touch()
    assert rhythm_core.wait(execution_id, timeout=30) == RESULT
    second.signal(signal.SIGTERM)
    assert second.wait() == 0, second.output()
    assert len(started.read_text().split()) == 2  # held was started by both workers


def finished_work_sent(names: Iterable[str]) -> bool:
    """True once a backend holds the spans (by name) of all the work done before the kill:
    the two tasks that finished, the three workflow passes, and the creation of each task
    beside the application's creation of the workflow. Exporters send in batches: the last
    pass's spans may go out after the tasks' spans did."""
    seen = Counter(names)
    return (
        seen[f"task.{scenario.plain.name}"] >= 1
        and seen[f"task.{scenario.flaky_once.name}"] >= 1
        and seen["workflow.replay"] >= 3
        and seen["db.create_execution"] >= 4
    )


def check(db: Any, spans: list[ReceivedSpan], app_trace: str, app_span: str) -> dict[str, Any]:
    """Assert the scenario's trace; returns the rows by function name for further checks."""
    rows = db.execute(ROWS).fetchall()
    assert {row[3] for row in rows} == {app_trace}  # the application's trace, in every row
    assert spans and {s.trace_id for s in spans} == {app_trace}
    by_id = {span.span_id: span for span in spans}

    for row_id, kind, function, _, span_id, carrier, parent_id in rows:
        named = [s for s in spans if s.name == f"{kind}.{function}"]
        assert [s.span_id for s in named] == [span_id], function  # one, with the row's id
        span = named[0]
        assert span.attributes.get("rhythm.execution_id") == row_id
        assert span.parent_span_id is not None
        creator = by_id[span.parent_span_id]
        assert creator.name == "db.create_execution"
        assert carrier["traceparent"].split("-")[2] == creator.span_id
        if parent_id is None:
            assert creator.parent_span_id == app_span  # the application's span parents it
        else:
            assert creator.parent_span_id is not None
            assert by_id[creator.parent_span_id].name == "workflow.replay"

    rows_by_function = {row[2]: row for row in rows}
    flaky = rows_by_function[scenario.flaky_once.name]
    invokes = sorted(
        (s for s in spans if s.name == "function.invoke" and s.parent_span_id == flaky[4]),
        key=lambda s: int(s.attributes["rhythm.attempt"]),
    )
    assert [s.error for s in invokes] == [True, False]  # the failed attempt, then the retry
    held = rows_by_function[scenario.held.name]
    held_invokes = [s for s in spans if s.name == "function.invoke" and s.parent_span_id == held[4]]
    assert len(held_invokes) == 1  # the killed attempt sent nothing; the second continued

    for span in spans:  # every span hangs off a span of the trace; the app's span is the root
        assert span.span_id == app_span or span.parent_span_id in by_id, span.name
    assert Counter(s.name for s in spans)["workflow.replay"] >= 3
    return rows_by_function
