"""The plugin's settings: ``options["datadog"]`` in the observability block, or variables.

Precedence as in the core: the block, then ``RHYTHM_*`` variables, then Datadog's own
``DD_*`` variables, then defaults. Bad values fail at start naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rhythm_core import ConfigError, ObservabilityConfig
from rhythm_core.obsconfig import port_number

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

    def where(key: str) -> str:
        return f"observability.options.datadog.{key}"

    agent: str | None = None
    if "agent_url" in block:
        agent = _agent_url(where("agent_url"), str(block["agent_url"]))
    elif config.traces.endpoint:
        agent = _agent_url("the traces endpoint (RHYTHM_TRACING_ENDPOINT)", config.traces.endpoint)

    # the metrics endpoint, when given, is DogStatsD's host:port
    host: str | None = None
    port: Any = None
    port_key = where("statsd_port")
    if config.metrics.endpoint:
        given = urlsplit(
            config.metrics.endpoint
            if "//" in config.metrics.endpoint
            else f"udp://{config.metrics.endpoint}"
        )
        host, port = given.hostname, given.port
        port_key = "the metrics endpoint (RHYTHM_METRICS_ENDPOINT)"
    if "statsd_host" in block:
        host = str(block["statsd_host"])
    if "statsd_port" in block:
        port, port_key = block["statsd_port"], where("statsd_port")
    host = host or env.get("DD_DOGSTATSD_HOST") or env.get("DD_AGENT_HOST") or "localhost"
    if port is None and env.get("DD_DOGSTATSD_PORT"):
        port, port_key = env["DD_DOGSTATSD_PORT"], "DD_DOGSTATSD_PORT"

    span_type = str(block.get("span_type", "worker"))
    if not span_type:
        raise ConfigError(f"{where('span_type')} must not be empty")
    return DatadogSettings(
        agent_url=agent,
        statsd_host=host,
        statsd_port=8125 if port is None else port_number(port_key, port),
        service=config.service_name or env.get("DD_SERVICE") or "rhythm",
        span_type=span_type,
    )
