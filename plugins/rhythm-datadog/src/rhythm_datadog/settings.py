"""The plugin's settings: ``options["datadog"]`` in the observability block, or variables.

Precedence as in the core: the block, then ``RHYTHM_*`` variables, then Datadog's own
``DD_*`` variables, then defaults. Bad values fail at start naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from rhythm_core.observability import (
    ConfigError,
    ObservabilityConfig,
    Setting,
    port_number,
    setting,
)

PREFIX = "observability.options.datadog"

KEYS = ("agent_url", "statsd_host", "statsd_port", "span_type")


@dataclass(frozen=True, slots=True)
class DatadogSettings:
    """:ivar agent_url: the trace agent, ``http://host:8126`` or ``unix:///path``; None leaves
        it to ddtrace (``DD_TRACE_AGENT_URL``, ``DD_AGENT_HOST``, localhost).
    :ivar statsd_host: DogStatsD's host.
    :ivar statsd_port: DogStatsD's UDP port.
    :ivar service: the service name on every span and metric.
    :ivar span_type: the Datadog span type of execution spans (``worker``).
    """

    agent_url: str | None
    statsd_host: str
    statsd_port: int
    service: str
    span_type: str


def _agent_url(key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "unix") or not (parts.netloc or parts.path):
        raise ConfigError(
            f"{key} must be a URL such as http://127.0.0.1:8126 or unix:///var/run/"
            f"datadog/apm.socket, got {value!r}"
        )
    return value


def resolve(config: ObservabilityConfig, env: Mapping[str, str] | None = None) -> DatadogSettings:
    env = os.environ if env is None else env
    block = config.plugin_options("datadog", KEYS)

    def pick(key: str, *variables: str, fallback: Setting | None = None) -> Setting:
        return setting(block, key, PREFIX, *variables, env=env, fallback=fallback)

    where, value = pick(
        "agent_url",
        fallback=Setting("the traces endpoint (RHYTHM_TRACING_ENDPOINT)", config.traces.endpoint),
    )
    agent = _agent_url(where, str(value)) if where else None

    # the metrics endpoint, when given, is DogStatsD's host:port
    given_host: str | None = None
    given_port: int | None = None
    if config.metrics.endpoint:
        given = urlsplit(
            config.metrics.endpoint
            if "//" in config.metrics.endpoint
            else f"udp://{config.metrics.endpoint}"
        )
        given_host, given_port = given.hostname, given.port
    endpoint = "the metrics endpoint (RHYTHM_METRICS_ENDPOINT)"
    _, host = pick(
        "statsd_host",
        "DD_DOGSTATSD_HOST",
        "DD_AGENT_HOST",
        fallback=Setting(endpoint, given_host),
    )
    port_key, port = pick(
        "statsd_port", "DD_DOGSTATSD_PORT", fallback=Setting(endpoint, given_port)
    )

    span_type = str(block.get("span_type", "worker"))
    if not span_type:
        raise ConfigError(f"{PREFIX}.span_type must not be empty")
    return DatadogSettings(
        agent_url=agent,
        statsd_host=str(host or "localhost"),
        statsd_port=8125 if not port_key else port_number(port_key, port),
        service=config.service_name or env.get("DD_SERVICE") or "rhythm",
        span_type=span_type,
    )
