"""Where the database is and how to connect to it, with one-line errors that name the source."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

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
        from .observability.manager import activate, from_block

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
    """The connection string as libpq reads it, in key=value form with the password hidden,
    so that it can be printed. Parsed, not matched: a password may hold spaces, quotes, ``@``
    or ``%``-escapes in either form. One that does not parse is not shown at all."""
    try:
        params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except (psycopg.Error, ValueError, TypeError):
        return "a connection string that does not parse (not shown)"
    if "password" in params:
        params["password"] = "***"
    host = params.get("host", "")
    if "@" in host:  # a URL's unescaped @ in the password: libpq splits at the first one, so
        # the host holds the password's tail
        params["host"] = ",".join(re.sub(r"^.*@", "***@", h) for h in host.split(","))
    return make_conninfo(**params) or "(empty: libpq's defaults)"


def _reason(url: str, exc: Exception) -> str:
    """The first line of a connection error, without anything it quotes from ``url``."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        password = str(conninfo_to_dict(url).get("password") or "")
    except (psycopg.Error, ValueError, TypeError):  # libpq quotes the part it stopped at
        return re.sub(r'"[^"]*"', '"…"', reason)
    return reason.replace(password, "***") if password else reason


def connect_kwargs(url: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = 10
    return kwargs


def _unavailable(url: str, source: str, exc: Exception) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"cannot connect to {source} ({mask(url)}): {_reason(url, exc)}")


def connect(url: str, source: str = ENV_URL) -> psycopg.Connection[Any]:
    """Open an autocommit connection, or raise :class:`DatabaseUnavailable` in one line."""
    try:
        return psycopg.Connection.connect(url, **connect_kwargs(url))
    except (psycopg.Error, ValueError) as exc:
        raise _unavailable(url, source, exc) from None


async def connect_async(
    url: str, source: str = ENV_URL, **kwargs: Any
) -> psycopg.AsyncConnection[Any]:
    """Async twin of :func:`connect`; ``kwargs`` replace the default connection options."""
    try:
        return await psycopg.AsyncConnection.connect(url, **(kwargs or connect_kwargs(url)))
    except (psycopg.Error, ValueError) as exc:
        raise _unavailable(url, source, exc) from None
