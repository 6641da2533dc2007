"""Metrics over OTLP, nothing lost on SIGTERM, and a backend that is down."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import Any

import pytest
import rhythm_otel

from rhythm_core.observability import BY_NAME
from rhythm_core.testing import delivery, scenario
from rhythm_core.testing.loopback import backend_down

from .otlp_sink import OtlpSink
from .workers import otel_env

KINDS = {"sum": "counter", "histogram": "histogram", "gauge": "gauge"}


def test_metrics_arrive_with_the_catalogue_names_kinds_and_units(
    sink: OtlpSink, rhythm_worker: Any, rhythm_db: Any
) -> None:
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "otel",
        "metrics": {"enabled": True, "interval": 0.3, "endpoint": sink.endpoint},
    })
    scenario.noop.queue_many([()] * 20)

    def received() -> dict[str, Any]:
        with sink.lock:
            return {metric.name: metric for _, metric in sink.metrics}

    wanted = {"rhythm.executions.claimed", "rhythm.executions.completed",
              "rhythm.execution.duration", "rhythm.function.execution.duration",
              "rhythm.workers.active"}
    try:
        metrics = sink.wait_for(lambda: wanted <= set(received()) and received())
    except AssertionError:
        raise AssertionError(f"missing: {sorted(wanted - set(received()))}") from None
    for name in wanted:
        metric, known = metrics[name], BY_NAME[name]
        assert KINDS[metric.WhichOneof("data")] == known.kind, name
        assert metric.unit == known.unit, name
    duration = metrics["rhythm.execution.duration"].histogram.data_points[0]
    assert list(duration.explicit_bounds)[:3] == [0.001, 0.0025, 0.005]  # the catalogue's
    completed = sink.wait_for(lambda: sum(
        p.as_int for m in received().values() if m.name == "rhythm.executions.completed"
        for p in m.sum.data_points) >= 20)
    assert completed


def test_sigterm_loses_no_span(sink: OtlpSink, rhythm_worker_process: Any, rhythm_db: Any) -> None:
    rows = delivery.run_then_sigterm(rhythm_worker_process, otel_env(sink.endpoint), rhythm_db)

    def received() -> set[tuple[str, str]]:
        with sink.lock:
            return {(s.trace_id.hex(), s.span_id.hex()) for _, s in sink.spans
                    if s.name == f"task.{scenario.noop.name}"}

    # the worker's exports were acknowledged by rotel before it exited; rotel forwards them
    # to the sink in batches of its own, so they may reach it a moment later
    with contextlib.suppress(AssertionError):
        sink.wait_for(lambda: rows <= received(), timeout=10)
    missing = rows - received()
    assert not missing, f"{len(missing)} of {len(rows)} execution spans never arrived"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_backend_down_completes_everything_and_counts_the_drops(
    rhythm_worker: Any, rhythm_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.WARNING, logger="rhythm_otel")
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter")
    rhythm_worker(scenario.QUEUE, observability={
        "provider": "otel",
        "traces": {"enabled": True, "sample_rate": 1.0, "endpoint": endpoint},
        "metrics": {"enabled": True, "interval": 0.5, "endpoint": endpoint},
        "options": {"otel": {"max_queue_size": 256, "schedule_delay_ms": 50}},
    })
    began = time.monotonic()
    scenario.noop.queue_many([()] * 1000)
    plugin = rhythm_otel.plugin
    pipeline = plugin.pipeline
    assert pipeline is not None and pipeline.shipper is not None
    most_queued = 0
    deadline = time.monotonic() + 60
    while delivery.completed(rhythm_db) < 1000:
        assert time.monotonic() < deadline, "executions did not all complete"
        most_queued = max(most_queued, pipeline.shipper.queued)
        time.sleep(0.01)
    assert time.monotonic() - began < 30  # nothing waited on the exporter
    # memory stays bounded: at most the queue and one batch in flight are held; every
    # execution ended with at least its execution span, so most of 1,000 were dropped
    assert 0 < most_queued <= 256
    assert plugin.dropped_spans >= 1000 - 2 * 256
    deadline = time.monotonic() + 30
    while not any("could not be sent" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "no failed export was logged"
        time.sleep(0.1)
    time.sleep(2.5)  # more failed exports (each after its retries) are not logged again
    for why in ("could not be sent", "queue is full"):
        assert len([r for r in caplog.records if why in r.getMessage()]) == 1, why
    # the OpenTelemetry exporters' own retry and failure lines: each kind once, not per retry
    exporter_lines = [(r.name, r.msg) for r in caplog.records
                      if r.name.startswith("opentelemetry.exporter")]
    assert exporter_lines, "the exporters said nothing about the endpoint being down"
    assert len(exporter_lines) == len(set(exporter_lines)), exporter_lines


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("down", ["closed", "black-holed"])
def test_stop_ends_within_the_shutdown_timeout_with_the_backend_down(
    protocol: str, down: str, rhythm_worker_process: Any, rhythm_db: Any
) -> None:
    with backend_down(down) as address:
        env = otel_env(f"http://{address}", RHYTHM_OTEL_PROTOCOL=protocol)
        worker = delivery.stop_with_backend_down(
            rhythm_worker_process, env, rhythm_db, shutdown_timeout=3.0)
    output = worker.output()
    # what could not be sent is said once, with the numbers; the exporters' retries are
    # said once per kind (one for spans, one for metrics), not once per retry
    assert output.count("could not be delivered while this process ran") == 1, output[-3000:]
    assert output.count("Transient error") <= 2, output[-3000:]


@pytest.mark.parametrize("down", ["closed", "black-holed"])
def test_an_enqueue_only_process_exits_within_seconds_with_the_backend_down(
    down: str, rhythm_database_url: str, rhythm_db: Any
) -> None:
    with backend_down(down) as address:
        delivery.enqueue_then_exit(otel_env(f"http://{address}"), rhythm_database_url)
