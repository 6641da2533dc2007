"""Reading what the example JSON-lines plugin wrote, from every process of a test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spans, metrics = [], []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            (spans if record["type"] == "span" else metrics).append(record)
    return spans, metrics


def jsonl_env(directory: Path, **extra: str) -> dict[str, str]:
    """Environment that makes a worker process trace into ``directory`` via the jsonl plugin."""
    return {
        "RHYTHM_TRACING_ENABLED": "true",
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_OBSERVABILITY_PROVIDER": "jsonl",
        "RHYTHM_TRACES_SAMPLE_RATE": "1",
        "RHYTHM_METRICS_INTERVAL": "0.5",
        "RHYTHM_JSONL_PATH": str(directory / "telemetry-{pid}.jsonl"),
        **extra,
    }


def jsonl_block(directory: Path, **traces: Any) -> dict[str, Any]:
    return {
        "provider": "jsonl",
        "traces": {"enabled": True, "sample_rate": 1.0, **traces},
        "metrics": {"enabled": True},
        "options": {"jsonl": {"path": str(directory / "telemetry-{pid}.jsonl")}},
    }
