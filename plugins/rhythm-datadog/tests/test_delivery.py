"""Nothing lost on SIGTERM; nothing blocks when no agent listens; metrics as DogStatsD
datagrams with the catalogue's names, types and tags."""

from __future__ import annotations

import time
from typing import Any

from rhythm_core.observability import BY_NAME, COUNTER, HISTOGRAM, MetricPoint
from rhythm_core.testing import delivery, scenario
from rhythm_core.testing.processes import free_port

from .agent import TestAgent, trace_id_of
from .conftest import datadog_env
from .statsd import StatsdListener

TYPES = {"counter": "c", "gauge": "g", "histogram": "d"}


def test_sigterm_loses_no_span(agent: TestAgent, statsd: StatsdListener,
                               rhythm_worker_process: Any, rhythm_db: Any) -> None:
    rows = delivery.run_then_sigterm(rhythm_worker_process,
                                     datadog_env(agent.url, statsd.port), rhythm_db)
    got = {(trace_id_of(s), f"{s['span_id']:016x}") for s in agent.spans()
           if s["name"] == f"task.{scenario.noop.name}"}
    assert rows <= got, f"{len(rows - got)} execution spans missing"


def test_metrics_are_dogstatsd_datagrams_from_the_catalogue(
    statsd: StatsdListener, rhythm_worker: Any, rhythm_db: Any
) -> None:
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "datadog", "service_name": "billing", "tags": {"team": "payments"},
        "metrics": {"enabled": True, "interval": 0.3, "endpoint": f"127.0.0.1:{statsd.port}"},
    })
    ids = scenario.noop.queue_many([()] * 20)
    scenario.flaky_always.queue_many([(1,), (2,)])
    wanted = {"rhythm.executions.claimed", "rhythm.executions.completed",
              "rhythm.execution.duration", "rhythm.function.execution.duration",
              "rhythm.workers.active"}
    statsd.wait_for(lambda got: wanted <= {d.name for d in got})
    lines = statsd.received()
    for line in lines:
        known = BY_NAME.get(line.name)
        assert known is not None, line.name  # nothing outside the catalogue
        assert line.type == TYPES[known.kind], line
        assert line.tag("service") == "billing" and line.tag("team") == "payments"
        labels = {tag.partition(":")[0] for tag in line.tags} - {"service", "team"}
        assert labels <= set(known.labels), (line.name, labels)
        assert not any(execution_id in tag for tag in line.tags for execution_id in ids)
    failed = [d for d in lines if d.name == "rhythm.executions.completed"
              and d.tag("status") == "failed"]
    assert sum(v for d in failed for v in d.values) == 2


def test_no_agent_blocks_nothing(rhythm_worker_process: Any, rhythm_db: Any) -> None:
    # a process of its own: ddtrace takes its agent address once per process, at import
    closed = free_port()  # nothing listens there
    delivery.run_without_backend(
        rhythm_worker_process, datadog_env(f"http://127.0.0.1:{closed}", closed), rhythm_db)


def test_metrics_go_out_once_an_interval_and_on_flush(statsd: StatsdListener) -> None:
    import rhythm_datadog

    from rhythm_core import testing

    obs = testing.from_block({
        "provider": "datadog", "traces": {"enabled": False},
        "metrics": {"enabled": True, "interval": 30, "endpoint": f"127.0.0.1:{statsd.port}"},
    }).start()
    try:
        for value in (0.25, 0.5, 0.75):
            obs.metric(MetricPoint("rhythm.execution.duration", HISTOGRAM, value, "s",
                                   {"queue": "q"}, time.time_ns()))
        obs.metric(MetricPoint("rhythm.executions.claimed", COUNTER, 3, "{execution}",
                               {"queue": "q"}, time.time_ns()))
        time.sleep(1.5)  # several of the client's former 0.3 s flushes
        assert statsd.received() == []  # held for the 30 s interval
        assert rhythm_datadog.plugin.flush(10)
        got = statsd.wait_for(lambda lines: len(lines) >= 4 and lines)
        durations = sorted(v for d in got if d.name == "rhythm.execution.duration"
                           for v in d.values)
        assert durations == [0.25, 0.5, 0.75]
        assert [d.values for d in got if d.name == "rhythm.executions.claimed"] == [(3.0,)]
    finally:
        obs.shutdown(5)


def test_a_busy_series_is_sampled_and_its_lines_say_by_how_much(statsd: StatsdListener) -> None:
    """A point of a busy quarter second (3,200 durations) becomes LINES_PER_POINT lines on
    average, each carrying its sample rate, so that Datadog's count (the sum of 1/rate) is
    the number of observations; a small point is sent whole. Ten such points: 320 lines
    expected, binomial with a standard deviation of 18."""
    import random

    import rhythm_datadog
    from rhythm_datadog.plugin import LINES_PER_POINT

    from rhythm_core import testing

    random.seed(11)  # the client draws from the module's generator
    obs = testing.from_block({
        "provider": "datadog", "traces": {"enabled": False},
        "metrics": {"enabled": True, "interval": 30, "endpoint": f"127.0.0.1:{statsd.port}"},
    }).start()
    busy = tuple(0.001 * (n % 100) for n in range(3200))
    try:
        for _ in range(10):
            obs.metric(MetricPoint("rhythm.execution.duration", HISTOGRAM, sum(busy), "s",
                                   {"queue": "busy"}, time.time_ns(), busy))
        obs.metric(MetricPoint("rhythm.execution.duration", HISTOGRAM, 1.5, "s",
                               {"queue": "quiet"}, time.time_ns(), (0.5, 1.0)))
        assert rhythm_datadog.plugin.flush(10)
        got = statsd.wait_for(
            lambda lines: any(d.tag("queue") == "quiet" for d in lines) and lines)
        time.sleep(0.3)  # the last datagrams of the flush
        got = statsd.received()
    finally:
        obs.shutdown(5)
    sampled = [d for d in got if d.tag("queue") == "busy"]
    assert {d.rate for d in sampled} == {LINES_PER_POINT / len(busy)}
    assert 200 < len(sampled) < 440, len(sampled)
    counted = sum(len(d.values) / d.rate for d in sampled)
    assert 20_000 < counted < 44_000, counted  # 32,000 observations
    quiet = [d for d in got if d.tag("queue") == "quiet"]
    assert sorted(v for d in quiet for v in d.values) == [0.5, 1.0]
    assert {d.rate for d in quiet} == {1.0}


# An agent that accepts and never answers is not tested here: ddtrace 4's native writer holds
# the interpreter's exit for about 20 s whatever the plugin does (docs/datadog.md).


def test_stop_ends_within_the_shutdown_timeout_with_no_agent(
    rhythm_worker_process: Any, rhythm_db: Any
) -> None:
    closed = free_port()  # nothing listens there, for traces or for DogStatsD
    delivery.stop_with_backend_down(
        rhythm_worker_process, datadog_env(f"http://127.0.0.1:{closed}", closed), rhythm_db,
        shutdown_timeout=3.0)


def test_an_enqueue_only_process_exits_within_seconds_with_no_agent(
    rhythm_database_url: str, rhythm_db: Any
) -> None:
    closed = free_port()
    delivery.enqueue_then_exit(
        datadog_env(f"http://127.0.0.1:{closed}", closed), rhythm_database_url)


def test_dogstatsd_tags_are_not_repeated_when_dd_variables_name_them(
    statsd: StatsdListener, rhythm_worker: Any, rhythm_db: Any, monkeypatch: Any
) -> None:
    # the DogStatsD client adds DD_SERVICE and DD_ENV itself: the plugin must not add them too
    monkeypatch.setenv("DD_SERVICE", "billing")
    monkeypatch.setenv("DD_ENV", "dev")
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "datadog", "tags": {"env": "dev", "team": "payments"},
        "metrics": {"enabled": True, "interval": 0.3, "endpoint": f"127.0.0.1:{statsd.port}"},
    })
    scenario.noop.queue_many([()] * 5)
    statsd.wait_for(lambda got: any(d.name == "rhythm.executions.completed" for d in got))
    for line in statsd.received():
        assert len(line.tags) == len(set(line.tags)), line.tags
        assert line.tag("service") == "billing" and line.tag("env") == "dev", line.tags
        assert line.tag("team") == "payments"
