"""The environment of a ``rhythm worker`` process with the otel provider (the processes
themselves come from the core's ``rhythm_worker_process`` fixture)."""

from __future__ import annotations


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "RHYTHM_OBSERVABILITY_PROVIDER": "otel",
        "RHYTHM_TRACING_ENABLED": "true",
        "RHYTHM_TRACES_SAMPLE_RATE": "1.0",
        "RHYTHM_TRACING_ENDPOINT": endpoint,
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_METRICS_ENDPOINT": endpoint,
        "RHYTHM_METRICS_INTERVAL": "0.5",
        **extra,
    }
