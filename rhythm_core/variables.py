"""The ``RHYTHM_*`` environment variables rhythm reads, so that a misspelt one is reported at
start instead of silently ignored (``RHYTHM_TRACING_ENABLE=true`` leaves tracing off)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

CORE = frozenset(
    {
        "RHYTHM_DATABASE_URL",
        "RHYTHM_EMBEDDED_DIR",
        "RHYTHM_TEST_DATABASE_URL",
        "RHYTHM_LOG_LEVEL",
        "RHYTHM_LOG_FORMAT",
        "RHYTHM_OBSERVABILITY_PROVIDER",
        "RHYTHM_OBSERVABILITY_TAGS",
        "RHYTHM_SERVICE_NAME",
        "RHYTHM_TRACING_SERVICE_NAME",
        "RHYTHM_TRACING_ENABLED",
        "RHYTHM_TRACING_ENDPOINT",
        "RHYTHM_TRACES_SAMPLE_RATE",
        "RHYTHM_TRACES_SAMPLE_ERRORS",
        "RHYTHM_METRICS_ENABLED",
        "RHYTHM_METRICS_ENDPOINT",
        "RHYTHM_METRICS_INTERVAL",
        "RHYTHM_METRICS_WORKER_ID_LABEL",
    }
)
# The shipped providers' own variables: known whether or not the provider is selected.
PROVIDERS = frozenset(
    {
        "RHYTHM_OTEL_PROTOCOL",
        "RHYTHM_OTEL_MAX_QUEUE_SIZE",
        "RHYTHM_OTEL_SCHEDULE_DELAY_MS",
        "RHYTHM_PROMETHEUS_PORT",
        "RHYTHM_PROMETHEUS_HOST",
    }
)


def unknown(
    env: Mapping[str, str] | None = None, declared: Iterable[str] = ()
) -> list[tuple[str, str | None]]:
    """Each ``RHYTHM_*`` variable set in ``env`` that nothing reads, with the closest known
    name (or None). ``declared``: variables of the plugins in use (their
    ``environment_variables`` attribute)."""
    env = os.environ if env is None else env
    known = sorted(CORE | PROVIDERS | set(declared))
    found = []
    for name in sorted(env):
        if name.startswith("RHYTHM_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            found.append((name, close[0] if close else None))
    return found


def masked_endpoint(endpoint: str) -> str:
    """An endpoint as it may be logged: a password in it, and the query string (where
    tokens go), replaced by ``***``."""
    parts = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
    shown = urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))
    return shown if "//" in endpoint else shown.removeprefix("//")
