"""Nothing lost on SIGTERM; nothing blocks when no daemon listens; large segments cut to fit a
datagram; metrics as valid EMF documents with the catalogue's names."""

from __future__ import annotations

from typing import Any

import pytest

import rhythm_core
from rhythm_core import task
from rhythm_core.observability import BY_NAME
from rhythm_core.testing import delivery, scenario
from rhythm_core.testing.failover import wait_until
from rhythm_core.testing.loopback import backend_down
from rhythm_core.testing.processes import free_port

from .conftest import xray_env
from .emf import EmfListener
from .xray import MAX_DATAGRAM, Daemon, Reader

QUEUE = "rhythm-xray-large"
SPANS = 120


@task(queue=QUEUE, retries=0)
async def many_metrics(count: int) -> None:
    for n in range(count):
        rhythm_core.metrics.increment(f"orders.step{n:03d}", tags={"shop": "north"})


@task(queue=QUEUE, retries=0)
async def many_spans(size: int) -> int:
    for n in range(SPANS):
        with rhythm_core.trace.span("step", n=n, payload="x" * size):
            pass
    with rhythm_core.trace.span("huge", payload="y" * 200_000):  # no datagram holds this
        pass
    return SPANS


def test_sigterm_loses_no_span(daemon: Daemon, emf: EmfListener, reader: Reader,
                               rhythm_worker_process: Any, rhythm_db: Any) -> None:
    rows = delivery.run_then_sigterm(rhythm_worker_process,
                                     xray_env(daemon.address, emf.endpoint), rhythm_db)
    wait_until(daemon.settled, "the daemon stand-in did not forward everything", 60)

    def missing() -> list[tuple[str, str]]:
        return [(t, s) for t, s in rows if s not in {r.span_id for r in reader.spans(t)}]

    left = missing()
    assert not left, f"{len(left)} execution segments missing, e.g. {left[:3]}"


def test_large_segments_are_cut_to_fit_datagrams(daemon: Daemon, reader: Reader,
                                                 rhythm_worker: Any, rhythm_db: Any) -> None:
    rhythm_worker(QUEUE, observability={
        "provider": "xray", "traces": {"enabled": True, "sample_rate": 1.0,
                                       "endpoint": daemon.address}})
    execution_id = many_spans.queue(1_000)  # ~120 kB of steps under one execution
    assert rhythm_core.wait(execution_id, timeout=30) == SPANS
    trace_id = rhythm_core.get_execution(execution_id).trace_id
    spans = wait_until(lambda: (found := reader.spans(trace_id)) and len(found) >= SPANS + 5
                       and found, "not every span of the large execution arrived")
    assert [s.name for s in spans].count("step") == SPANS
    assert max(len(d) for d in daemon.datagrams) <= MAX_DATAGRAM  # the stand-in checks each too
    (huge,) = [s for s in spans if s.name == "huge"]
    assert huge.attributes == {"rhythm.truncated": True}  # kept, without its payload
    by_id = {s.span_id: s for s in spans}
    invoke = next(s for s in spans if s.name == "function.invoke")
    assert all(by_id[s.parent_span_id] is invoke for s in spans if s.name in ("step", "huge"))


def test_metrics_are_emf_documents_from_the_catalogue(emf: EmfListener, rhythm_worker: Any,
                                                      rhythm_db: Any) -> None:
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "xray", "service_name": "billing", "tags": {"team": "payments"},
        "metrics": {"enabled": True, "interval": 0.3, "endpoint": emf.endpoint},
        "options": {"xray": {"namespace": "Rhythm/Tests", "log_group": "rhythm-metrics"}},
    })
    ids = scenario.noop.queue_many([()] * 150)
    scenario.flaky_always.queue_many([(1,), (2,)])
    wanted = {"rhythm.executions.claimed", "rhythm.executions.completed",
              "rhythm.execution.duration", "rhythm.function.execution.duration",
              "rhythm.workers.active"}
    documents = emf.wait_for(wanted)
    assert wanted <= {n for d in documents for n in d.names}
    for document in documents:
        directive = document.directive
        assert directive["Namespace"] == "Rhythm/Tests"
        assert document.body["_aws"]["LogGroupName"] == "rhythm-metrics"
        assert len(directive["Metrics"]) <= 100
        (dimensions,) = directive["Dimensions"]
        assert document.dimension("ServiceName") == "billing"
        assert document.dimension("team") == "payments"
        for metric in directive["Metrics"]:
            known = BY_NAME.get(metric["Name"])
            assert known is not None, metric["Name"]  # nothing outside the catalogue
            assert document.body["rhythm_metric_kinds"][metric["Name"]] == known.kind
            assert set(dimensions) - {"ServiceName", "team"} <= set(known.labels)
            if known.unit == "s":
                assert metric["Unit"] == "Seconds"
        assert not any(i in str(document.body) for i in ids)  # no execution ids anywhere
    def completed(status: str) -> float:
        return sum(v for d in emf.received() if "rhythm.executions.completed" in d.names
                   and d.dimension("status") == status
                   for v in d.values("rhythm.executions.completed"))

    wait_until(lambda: completed("success") == 150 and completed("failed") == 2,
               "the completed counts never reached 150 successes and 2 failures")
    durations = [v for d in emf.received() if "rhythm.execution.duration" in d.names
                 for v in d.values("rhythm.execution.duration")]
    assert len(durations) >= 150 and all(v >= 0 for v in durations)


def test_a_label_set_with_many_metrics_is_split_by_the_library(
    emf: EmfListener, rhythm_worker: Any
) -> None:
    rhythm_worker(QUEUE, observability={
        "provider": "xray",
        "metrics": {"enabled": True, "interval": 0.3, "endpoint": emf.endpoint}})
    rhythm_core.wait(many_metrics.queue(250), timeout=30)
    names = {f"orders.step{n:03d}" for n in range(250)}
    documents = [d for d in emf.wait_for(names) if d.dimension("shop") == "north"]
    assert names <= {n for d in documents for n in d.names}
    assert len(documents) >= 3 and all(len(d.names) <= 100 for d in documents)
    assert all(d.body["rhythm_metric_kinds"][n] == "counter" for d in documents for n in d.names)


def test_no_daemon_blocks_nothing(rhythm_worker_process: Any, rhythm_db: Any) -> None:
    closed = free_port()  # nothing listens there, for segments or for EMF
    worker = delivery.run_without_backend(
        rhythm_worker_process,
        xray_env(f"127.0.0.1:{closed}", f"tcp://127.0.0.1:{closed}"), rhythm_db)
    output = worker.output()
    assert output.count("could not be sent to the CloudWatch agent") == 1, output[-3000:]


def test_a_stopped_worker_does_not_silence_the_enqueueing_side(
    daemon: Daemon, reader: Reader, rhythm_db: Any
) -> None:
    """One process enqueues with the xray provider and runs a worker with it too; the worker
    stops, and what the application enqueues afterwards is still traced."""
    from rhythm_core import Worker, testing

    block = {"provider": "xray",
             "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": daemon.address}}
    enqueueing = testing.from_block(block)
    worker = Worker(scenario.QUEUE, observability=block, poll_interval=0.2)
    thread = worker.start_in_thread()
    testing.activate(enqueueing)  # the application's own configuration, for .queue()
    try:
        rhythm_core.wait(scenario.noop.queue(), timeout=30)
        worker.stop()
        thread.join(30)  # the worker has shut its observability down
        assert not thread.is_alive()
        later = scenario.noop.queue()  # nobody runs it now; its creation is still traced
    finally:
        enqueueing.shutdown(5.0)
        testing.activate(testing.DISABLED)
    trace_id = rhythm_core.get_execution(later).trace_id
    spans = wait_until(lambda: reader.spans(trace_id), "the enqueueing side went silent")
    assert [s.name for s in spans] == ["db.create_execution"]


@pytest.mark.parametrize("down", ["closed", "black-holed"])
def test_stop_ends_within_the_shutdown_timeout_with_the_agents_down(
    down: str, rhythm_worker_process: Any, rhythm_db: Any
) -> None:
    # segments go over UDP, which nothing can hold up; the CloudWatch agent is a TCP peer
    with backend_down(down) as agent:
        env = xray_env(f"127.0.0.1:{free_port()}", f"tcp://{agent}")
        worker = delivery.stop_with_backend_down(
            rhythm_worker_process, env, rhythm_db, shutdown_timeout=3.0)
    output = worker.output()
    assert output.count("could not be delivered while this process ran") == 1, output[-3000:]


@pytest.mark.parametrize("down", ["closed", "black-holed"])
def test_an_enqueue_only_process_exits_within_seconds_with_the_agents_down(
    down: str, rhythm_database_url: str, rhythm_db: Any
) -> None:
    with backend_down(down) as agent:
        env = xray_env(f"127.0.0.1:{free_port()}", f"tcp://{agent}")
        delivery.enqueue_then_exit(env, rhythm_database_url)
