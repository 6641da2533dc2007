"""The plugin's own settings: ``options["otel"]`` in the observability block, or variables.

Precedence as in the core: the block, then ``RHYTHM_*`` variables, then OpenTelemetry's
standard ``OTEL_*`` variables, then defaults. Bad values fail at start naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rhythm_core.observability import ConfigError, ObservabilityConfig, Setting, setting

PROTOCOLS = ("grpc", "http/protobuf")
KEYS = ("protocol", "prometheus_port", "prometheus_host", "max_queue_size", "schedule_delay_ms")


@dataclass(frozen=True, slots=True)
class OtelSettings:
    """:ivar traces_endpoint: OTLP endpoint for spans, None for the exporter's own default
        (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, localhost).
    :ivar metrics_endpoint: the same for metrics.
    :ivar protocol: ``grpc`` or ``http/protobuf``.
    :ivar prometheus_port: serve ``/metrics`` for Prometheus on this port; None for no server.
    :ivar prometheus_host: the address that server listens on.
    :ivar max_queue_size: spans held for export at most; more are dropped and counted.
    :ivar schedule_delay_ms: how long a span may wait in the queue before a batch is sent.
    """

    traces_endpoint: str | None
    metrics_endpoint: str | None
    protocol: str
    prometheus_port: int | None
    prometheus_host: str
    max_queue_size: int
    schedule_delay_ms: int


def _int(key: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise ConfigError(f"{key} must be an integer from {low} to {high}, got {value!r}")
    return number


def resolve(config: ObservabilityConfig, env: Mapping[str, str] | None = None) -> OtelSettings:
    env = os.environ if env is None else env
    block = config.plugin_options("otel", KEYS)

    def pick(key: str, *variables: str) -> Setting:
        found = setting(block, key, "observability.options.otel", *variables, env=env)
        return found if found.where else Setting(f"observability.options.otel.{key}", None)

    where, protocol = pick(
        "protocol",
        "RHYTHM_OTEL_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    )
    protocol = protocol or "grpc"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where} must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    where, port = pick("prometheus_port", "RHYTHM_PROMETHEUS_PORT")
    _, host = pick("prometheus_host", "RHYTHM_PROMETHEUS_HOST")
    where_q, queue = pick("max_queue_size", "RHYTHM_OTEL_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE")
    where_d, delay = pick(
        "schedule_delay_ms", "RHYTHM_OTEL_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY"
    )
    return OtelSettings(
        traces_endpoint=config.traces.endpoint,
        metrics_endpoint=config.metrics.endpoint,
        protocol=protocol,
        prometheus_port=None if port in (None, "") else _int(where, port, 0, 65535),
        prometheus_host=str(host or "127.0.0.1"),
        max_queue_size=2048 if queue is None else _int(where_q, queue, 1, 10_000_000),
        schedule_delay_ms=1000 if delay is None else _int(where_d, delay, 1, 3_600_000),
    )
