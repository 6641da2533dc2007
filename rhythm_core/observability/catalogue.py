"""The metrics and spans the engine emits: names, kinds, units, labels, and the histogram
buckets plugins should use (they fit P50/P95/P99 from a millisecond to hours)."""

from __future__ import annotations

from dataclasses import dataclass

from .telemetry import COUNTER, GAUGE, HISTOGRAM

# Seconds: 1 ms to 4 h, roughly x2.5 per bucket, so each percentile falls in a narrow bucket.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
)


@dataclass(slots=True, frozen=True)
class Metric:
    name: str
    kind: str
    unit: str
    labels: tuple[str, ...]
    description: str


METRICS: tuple[Metric, ...] = (
    Metric(
        "rhythm.executions.claimed",
        COUNTER,
        "{execution}",
        ("queue", "worker_id", "execution_type"),
        "Executions claimed by workers.",
    ),
    Metric(
        "rhythm.executions.completed",
        COUNTER,
        "{execution}",
        ("queue", "status", "execution_type"),
        "Executions that reached a final state; status is success, failed or cancelled.",
    ),
    Metric(
        "rhythm.executions.created",
        COUNTER,
        "{execution}",
        ("queue", "execution_type", "has_parent"),
        "Executions created.",
    ),
    Metric(
        "rhythm.workflow.replays",
        COUNTER,
        "{replay}",
        ("workflow_name",),
        "Workflow passes (each resume replays the workflow from the start).",
    ),
    Metric(
        "rhythm.execution.duration",
        HISTOGRAM,
        "s",
        ("execution_type", "queue", "status"),
        "From created_at to completion, over all attempts.",
    ),
    Metric(
        "rhythm.claim_loop.duration",
        HISTOGRAM,
        "s",
        ("worker_id", "queue"),
        "Time one claim takes, idle polls included.",
    ),
    Metric(
        "rhythm.db.query.duration",
        HISTOGRAM,
        "s",
        ("operation",),
        "Database statements: claim, report, create, heartbeat, suspend, gauges.",
    ),
    Metric(
        "rhythm.function.execution.duration",
        HISTOGRAM,
        "s",
        ("function_name", "execution_type", "status"),
        "One attempt of a user function.",
    ),
    Metric(
        "rhythm.serialization.duration",
        HISTOGRAM,
        "s",
        ("direction", "format"),
        "Encoding arguments and results to JSON, and decoding them.",
    ),
    Metric(
        "rhythm.workers.active",
        GAUGE,
        "{worker}",
        (),
        "Workers with a live heartbeat (read from the database).",
    ),
    Metric(
        "rhythm.executions.waiting",
        GAUGE,
        "{execution}",
        ("queue", "execution_type"),
        "Pending executions: queue depth (read from the database).",
    ),
    Metric(
        "rhythm.executions.running",
        GAUGE,
        "{execution}",
        ("queue", "execution_type", "worker_id"),
        "Running executions (read from the database).",
    ),
    Metric(
        "rhythm.observability.errors",
        COUNTER,
        "{error}",
        ("plugin", "hook"),
        "Exceptions raised by observability plugins, caught by the core.",
    ),
)
BY_NAME = {metric.name: metric for metric in METRICS}

SPANS: tuple[tuple[str, str], ...] = (
    ("{execution_type}.{function_name}", "One per execution, from created_at to completion."),
    (
        "db.create_execution",
        "The insert that creates executions (enqueue, or a workflow's children).",
    ),
    ("db.claim_execution", "The claim that took the execution (idle polls make none)."),
    ("db.report_result", "The write of an attempt's outcome."),
    ("function.invoke", "One attempt of a task's function."),
    ("workflow.replay", "One pass of a workflow over its history."),
    ("serialization", "Encoding a result to JSON, or decoding arguments."),
    ("worker.heartbeat", "A heartbeat that failed (its own trace)."),
    (
        "worker.detect_dead_workers",
        "A dead-worker check that found work or failed (its own trace).",
    ),
)
