"""Where the database is and how to connect to it, with one-line errors that name the source."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import psycopg

from .errors import ConfigError, DatabaseUnavailable

ENV_URL = "RHYTHM_DATABASE_URL"
_configured_url: str | None = None


def configure(
    database_url: str | None = None, *, observability: Mapping[str, Any] | None = None
) -> None:
    """Configure this process's enqueueing side (and workers that are given no settings).

    :param database_url: used by ``.queue()``, ``wait()`` and workers (else
        ``RHYTHM_DATABASE_URL``, else the embedded server).
    :param observability: the observability block (docs/observability.md): traces of
        ``.queue()`` calls and ``rhythm_core.trace``/``metrics`` use it.
    """
    global _configured_url
    if database_url is not None and not isinstance(database_url, str):
        raise ConfigError(f"database_url must be a string, got {type(database_url).__name__}")
    if database_url is not None:
        _configured_url = database_url
    if observability is not None:  # flushed at exit with every started instance
        from .plugins import activate, from_block

        activate(from_block(observability))


def resolve_database_url(explicit: str | None = None) -> tuple[str, str]:
    """Return ``(url, source)``.

    Precedence: explicit > :func:`configure` > ``RHYTHM_DATABASE_URL`` > the embedded server.
    """
    if explicit:
        return explicit, "database_url"
    if _configured_url:
        return _configured_url, "rhythm_core.configure(database_url=...)"
    env = os.environ.get(ENV_URL, "").strip()
    if env:
        return env, ENV_URL
    from . import embedded

    return embedded.start(), "the embedded PostgreSQL"


def mask(url: str) -> str:
    """Hide the password of a URL or key=value DSN so it can be printed."""
    url = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", url)


def connect_kwargs(url: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = 10
    return kwargs


def _unavailable(url: str, source: str, exc: Exception) -> DatabaseUnavailable:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseUnavailable(f"cannot connect to {source} ({mask(url)}): {reason}")


def connect(url: str, source: str = ENV_URL) -> psycopg.Connection[Any]:
    """Open an autocommit connection, or raise :class:`DatabaseUnavailable` in one line."""
    try:
        return psycopg.Connection.connect(url, **connect_kwargs(url))
    except (psycopg.Error, ValueError) as exc:
        raise _unavailable(url, source, exc) from None


async def connect_async(url: str, source: str = ENV_URL) -> psycopg.AsyncConnection[Any]:
    """Async twin of :func:`connect`."""
    try:
        return await psycopg.AsyncConnection.connect(url, **connect_kwargs(url))
    except (psycopg.Error, ValueError) as exc:
        raise _unavailable(url, source, exc) from None
