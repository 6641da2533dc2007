"""The observability configuration: one block, ``RHYTHM_*`` variables as defaults.

Precedence: the block given to ``Worker(observability=...)`` or
``rhythm_core.configure(observability=...)`` > ``RHYTHM_*`` variables > the backend's own
standard variables (read by each plugin for the values left ``None`` here) > defaults.
Unknown keys and bad values fail at start with the key named.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..errors import ConfigError

DEFAULT_PROVIDER = "otel"
DEFAULT_SAMPLE_RATE = 0.1
DEFAULT_METRICS_INTERVAL = 10.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(slots=True, frozen=True)
class TracesConfig:
    """:ivar enabled: emit spans. :ivar endpoint: exporter endpoint, None for the backend's
    default. :ivar sample_rate: share of root traces kept (0 to 1), decided at the root and
    carried to every execution of the trace. :ivar sample_errors: emit a failed execution's
    spans even when its trace was not sampled."""

    enabled: bool = False
    endpoint: str | None = None
    sample_rate: float = DEFAULT_SAMPLE_RATE
    sample_errors: bool = True


@dataclass(slots=True, frozen=True)
class MetricsConfig:
    """:ivar enabled: emit metrics. :ivar endpoint: exporter endpoint, None for the backend's
    default. :ivar interval: seconds between exports, and between database gauge readings.
    :ivar worker_id_label: put ``worker_id`` on metrics that have it (off for large fleets)."""

    enabled: bool = False
    endpoint: str | None = None
    interval: float = DEFAULT_METRICS_INTERVAL
    worker_id_label: bool = True


@dataclass(slots=True, frozen=True)
class ObservabilityConfig:
    """The resolved configuration handed to ``rhythm_observability_configure``.

    :ivar providers: names of the providers loaded from the ``rhythm.observability`` group.
    :ivar plugins: plugin objects passed directly.
    :ivar traces: tracing settings.
    :ivar metrics: metrics settings.
    :ivar service_name: the service name, or None for the backend's own default.
    :ivar tags: tags put on every span and metric (resource attributes).
    :ivar options: per-provider settings, passed through untouched (``options["otel"]``...).
    """

    providers: tuple[str, ...] = ()
    plugins: tuple[object, ...] = ()
    traces: TracesConfig = field(default_factory=TracesConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    service_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.traces.enabled or self.metrics.enabled

    def plugin_options(self, name: str, known: Iterable[str]) -> dict[str, Any]:
        """``options[name]``, checked: a key not in ``known`` raises :class:`ConfigError`
        naming ``observability.options.<name>.<key>`` and the known keys."""
        block = self.options.get(name) or {}
        _check_keys(f"observability.options.{name}", block, set(known))
        return dict(block)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _float(
    key: str, value: Any, *, low: float, high: float = math.inf, open_low: bool = False
) -> float:
    number = math.nan
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not math.isfinite(number) or number < low or number > high or (open_low and number == low):
        span = f"from {low:g} to {high:g}" if high != math.inf else f"greater than {low:g}"
        raise ConfigError(f"{key} must be a number {span}, got {value!r}")
    return number


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    return value.strip()


def endpoint(key: str, value: Any) -> str:
    """An exporter's address: a URL (``http://host:4318``, ``unix:///path``) or ``host:port``.
    Only the form is checked here; whether anything listens there is the exporter's business."""
    text = _text(key, value)
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
    except ValueError:
        parts = None
    usable = parts is not None and (parts.hostname or (parts.scheme == "unix" and parts.path))
    if not usable or any(c.isspace() for c in text):
        raise ConfigError(f"{key} must be a URL or host:port, got {value!r}")
    return text


def port_number(key: str, value: Any) -> int:
    """A TCP or UDP port from a setting, or :class:`ConfigError` naming ``key``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a port number, got {value!r}") from None
    if isinstance(value, bool) or not 0 < number <= 65535:
        raise ConfigError(f"{key} must be a port number from 1 to 65535, got {value!r}")
    return number


def parse_tags(key: str, value: str) -> dict[str, str]:
    """Parse ``k:v,k:v`` (the reference's format for ``RHYTHM_OBSERVABILITY_TAGS``)."""
    tags: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, tag_value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"{key} must be k:v pairs separated by commas, got {value!r}")
        tags[name.strip()] = tag_value.strip()
    return tags


class Setting(NamedTuple):
    """A setting's value and where it came from (a dotted configuration key, a variable's
    name, or a description such as "the traces endpoint"); ``where`` is "" when unset."""

    where: str
    value: Any


def setting(
    block: Mapping[str, Any],
    key: str,
    prefix: str,
    *variables: str,
    env: Mapping[str, str] | None = None,
    fallback: Setting | None = None,
) -> Setting:
    """Look one setting up by the rule the core and every plugin share.

    ``block[key]`` (configuration given in code, under ``prefix``) wins; then ``fallback``, a
    value resolved already (a plugin's view of the core's endpoints) if it is not empty; then
    the first of ``variables`` set in ``env`` (``os.environ`` by default). A variable set to
    the empty string counts as unset, as OpenTelemetry's do.
    """
    if key in block:
        return Setting(f"{prefix}.{key}", block[key])
    if fallback is not None and fallback.value not in (None, ""):
        return fallback
    env = os.environ if env is None else env
    for name in variables:
        value = env.get(name)
        if value:
            return Setting(name, value)
    return Setting("", None)


def _check_keys(where: str, block: Mapping[str, Any], known: set[str]) -> None:
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(block).__name__}")
    for key in block:
        if key not in known:
            raise ConfigError(f"unknown key {where}.{key}; known keys: {', '.join(sorted(known))}")


def resolve(
    block: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> ObservabilityConfig:
    """Merge the block over the ``RHYTHM_*`` variables over defaults, validating both."""
    env = os.environ if env is None else env
    block = block or {}
    _check_keys(
        "observability",
        block,
        {"provider", "plugins", "traces", "metrics", "service_name", "tags", "options"},
    )
    traces_block = block.get("traces") or {}
    metrics_block = block.get("metrics") or {}
    _check_keys(
        "observability.traces",
        traces_block,
        {"enabled", "endpoint", "sample_rate", "sample_errors"},
    )
    _check_keys(
        "observability.metrics",
        metrics_block,
        {"enabled", "endpoint", "interval", "worker_id_label"},
    )

    def checked(
        section: Mapping[str, Any], key: str, where: str, var: str, check: Any, default: Any
    ) -> Any:
        found = setting(section, key, where, var, env=env)
        return check(found.where, found.value) if found.where else default

    traces = TracesConfig(
        enabled=checked(
            traces_block, "enabled", "observability.traces", "RHYTHM_TRACING_ENABLED", _bool, False
        ),
        endpoint=checked(
            traces_block,
            "endpoint",
            "observability.traces",
            "RHYTHM_TRACING_ENDPOINT",
            endpoint,
            None,
        ),
        sample_rate=checked(
            traces_block,
            "sample_rate",
            "observability.traces",
            "RHYTHM_TRACES_SAMPLE_RATE",
            lambda k, v: _float(k, v, low=0, high=1),
            DEFAULT_SAMPLE_RATE,
        ),
        sample_errors=checked(
            traces_block,
            "sample_errors",
            "observability.traces",
            "RHYTHM_TRACES_SAMPLE_ERRORS",
            _bool,
            True,
        ),
    )
    metrics = MetricsConfig(
        enabled=checked(
            metrics_block,
            "enabled",
            "observability.metrics",
            "RHYTHM_METRICS_ENABLED",
            _bool,
            False,
        ),
        endpoint=checked(
            metrics_block,
            "endpoint",
            "observability.metrics",
            "RHYTHM_METRICS_ENDPOINT",
            endpoint,
            None,
        ),
        interval=checked(
            metrics_block,
            "interval",
            "observability.metrics",
            "RHYTHM_METRICS_INTERVAL",
            lambda k, v: _float(k, v, low=0, open_low=True),
            DEFAULT_METRICS_INTERVAL,
        ),
        worker_id_label=checked(
            metrics_block,
            "worker_id_label",
            "observability.metrics",
            "RHYTHM_METRICS_WORKER_ID_LABEL",
            _bool,
            True,
        ),
    )
    found = setting(
        block,
        "service_name",
        "observability",
        "RHYTHM_SERVICE_NAME",
        "RHYTHM_TRACING_SERVICE_NAME",
        env=env,
    )
    service_name = _text(found.where, found.value) if found.where else None

    if "tags" in block:
        tags = block["tags"]
        if not isinstance(tags, Mapping) or not all(isinstance(k, str) for k in tags):
            raise ConfigError(f"observability.tags must be a mapping of strings, got {tags!r}")
        tags = {k: str(v) for k, v in tags.items()}
    else:
        tags = parse_tags("RHYTHM_OBSERVABILITY_TAGS", env.get("RHYTHM_OBSERVABILITY_TAGS", ""))

    providers, plugins = _providers(block, env)
    options = block.get("options") or {}
    if not isinstance(options, Mapping) or not all(
        isinstance(v, Mapping) for v in options.values()
    ):
        raise ConfigError("observability.options must map provider names to mappings")
    return ObservabilityConfig(providers, plugins, traces, metrics, service_name, tags, options)


def _providers(
    block: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[object, ...]]:
    plugins = list(block.get("plugins") or ())
    if "provider" in block:
        chosen = block["provider"]
        key = "observability.provider"
    elif plugins:
        chosen, key = [], ""  # plugin objects alone: no provider loaded by name
    else:
        chosen = env.get("RHYTHM_OBSERVABILITY_PROVIDER", DEFAULT_PROVIDER)
        key = "RHYTHM_OBSERVABILITY_PROVIDER"
    items = chosen.split(",") if isinstance(chosen, str) else list(chosen)
    names: list[str] = []
    for item in items:
        if isinstance(item, str):
            if item.strip():
                names.append(item.strip())
            elif key:
                raise ConfigError(f"{key} has an empty provider name: {chosen!r}")
        elif item is None:
            raise ConfigError(f"{key} must name providers or give plugin objects, got None")
        else:
            plugins.append(item)
    return tuple(names), tuple(plugins)
