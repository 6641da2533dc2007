"""The plugin's settings: ``options["xray"]`` in the observability block, or variables.

Precedence as in the core: the block, then ``RHYTHM_*`` variables (``RHYTHM_TRACING_ENDPOINT``
is the daemon, ``RHYTHM_METRICS_ENDPOINT`` the CloudWatch agent), then AWS's own variables
(``AWS_XRAY_DAEMON_ADDRESS``, ``AWS_XRAY_TRACING_NAME``, ``AWS_EMF_*``), then defaults. Bad
values fail at start naming the key.

aws-xray-sdk lets ``AWS_XRAY_DAEMON_ADDRESS`` override whatever address it is given, and
aws-embedded-metrics reads ``AWS_EMF_*`` once, at import; the plugin resolves both here and
hands the results to its own emitter and sink, so worker configuration wins.
"""

from __future__ import annotations

import os
import re
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

PREFIX = "observability.options.xray"

KEYS = ("daemon_address", "emf_endpoint", "namespace", "log_group", "log_stream")
DEFAULT_DAEMON = ("127.0.0.1", 2000)
DEFAULT_EMF = "tcp://127.0.0.1:25888"  # the CloudWatch agent's EMF listener
STDOUT = "stdout"
NAMESPACE = re.compile(r"^[a-zA-Z0-9._#:/-]{1,256}$")  # CloudWatch's rule


@dataclass(frozen=True, slots=True)
class XRaySettings:
    """:ivar daemon: the X-Ray daemon's UDP address (host, port).
    :ivar emf_endpoint: the CloudWatch agent's EMF endpoint, ``tcp://host:port`` or
        ``udp://host:port``, or ``stdout`` (Lambda, or containers whose logs the agent reads).
    :ivar namespace: the CloudWatch namespace of the metrics.
    :ivar log_group: the log group the agent writes EMF documents to.
    :ivar log_stream: the log stream, or None for the agent's default.
    :ivar service: the name of every segment (X-Ray's service name) and a metric dimension.
    """

    daemon: tuple[str, int]
    emf_endpoint: str
    namespace: str
    log_group: str
    log_stream: str | None
    service: str


def daemon_address(key: str, value: str) -> tuple[str, int]:
    """``host:port``, ``udp://host:port``, or the SDK's ``tcp:host:port udp:host:port``
    (segments go over UDP, so the ``udp:`` part)."""
    text = value.strip()
    parts = text.split()
    if len(parts) == 2:
        udp = [p for p in parts if p.startswith("udp:")]
        text = udp[0][len("udp:") :] if len(udp) == 1 else ""
    elif text.startswith("udp://"):
        text = text[len("udp://") :]
    host, sep, port = text.rpartition(":")
    if not sep or not host or "/" in host:
        raise ConfigError(
            f"{key} must be host:port (for example 127.0.0.1:2000) or "
            f"'tcp:host:port udp:host:port', got {value!r}"
        )
    return host.strip("[]"), port_number(key, port)


def emf_endpoint(key: str, value: str) -> str:
    text = value.strip()
    if text.lower() == STDOUT:
        return STDOUT
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "udp") or not parts.hostname or port is None:
        raise ConfigError(
            f"{key} must be tcp://host:port, udp://host:port or stdout, got {value!r}"
        )
    return text


def resolve(config: ObservabilityConfig, env: Mapping[str, str] | None = None) -> XRaySettings:
    env = os.environ if env is None else env
    block = config.plugin_options("xray", KEYS)

    def pick(key: str, variable: str, fallback: Setting | None = None) -> Setting:
        return setting(block, key, PREFIX, variable, env=env, fallback=fallback)

    where, value = pick(
        "daemon_address",
        "AWS_XRAY_DAEMON_ADDRESS",
        Setting("the traces endpoint (RHYTHM_TRACING_ENDPOINT)", config.traces.endpoint),
    )
    daemon = daemon_address(where, str(value)) if where else DEFAULT_DAEMON

    where, value = pick(
        "emf_endpoint",
        "AWS_EMF_AGENT_ENDPOINT",
        Setting("the metrics endpoint (RHYTHM_METRICS_ENDPOINT)", config.metrics.endpoint),
    )
    if not where and env.get("AWS_EMF_ENVIRONMENT", "").lower() in ("local", "lambda"):
        where, value = "AWS_EMF_ENVIRONMENT", STDOUT  # where the library itself would print
    endpoint = emf_endpoint(where, str(value)) if where else DEFAULT_EMF

    service = config.service_name or env.get("AWS_XRAY_TRACING_NAME") or "rhythm"
    where, value = pick("namespace", "AWS_EMF_NAMESPACE")
    namespace = str(value) if where else "rhythm"
    if not NAMESPACE.match(namespace):
        raise ConfigError(
            f"{where} must be 1 to 256 of letters, digits and . _ # : / -, got {namespace!r}"
        )
    where, value = pick("log_group", "AWS_EMF_LOG_GROUP_NAME")
    log_group = str(value).strip() if where else f"{service}-metrics"
    if not log_group:
        raise ConfigError(f"{where} must not be empty")
    where, value = pick("log_stream", "AWS_EMF_LOG_STREAM_NAME")
    return XRaySettings(
        daemon=daemon,
        emf_endpoint=endpoint,
        namespace=namespace,
        log_group=log_group,
        log_stream=str(value) if where and str(value).strip() else None,
        service=service,
    )
