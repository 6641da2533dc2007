"""A worker's long-lived connections, reopened after the database goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from .database import connect_async, connect_kwargs

log = logging.getLogger("rhythm.worker")
T = TypeVar("T")

# Conflicts PostgreSQL resolves by aborting one side; the statement is simply run again.
RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
# The connection is gone (or unusable): reconnect, then try again.
LOST = (psycopg.OperationalError, psycopg.InterfaceError)


class Connection:
    """One connection, opened lazily and reopened (with backoff) after it is lost."""

    def __init__(self, url: str, source: str, purpose: str) -> None:
        self.url, self.source, self.purpose = url, source, purpose
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._down_since: float | None = None

    async def get(self, *, first: bool = False) -> psycopg.AsyncConnection[Any]:
        """The open connection, reconnecting if needed.

        ``first=True`` turns a failure into :class:`DatabaseUnavailable` with a one-line message
        (for start-up); otherwise psycopg's own error is raised, which :meth:`run` retries.
        """
        if self._conn is None or self._conn.closed or self._conn.broken:
            if first:
                self._conn = await connect_async(self.url, self.source)
            else:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.url, **connect_kwargs(self.url)
                )
        return self._conn

    async def run(
        self,
        work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
        *,
        attempts: int | None = None,
        after_reconnect: Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]] | None = None,
        give_up: Callable[[], bool] | None = None,
    ) -> T:
        """Run ``work(conn)``; on lost connections and deadlocks, retry with backoff.

        ``attempts=None`` retries until it succeeds (used where giving up would lose data).
        ``after_reconnect`` runs on a new connection before ``work`` is tried again;
        ``give_up`` is asked before each retry (a stopping worker stops retrying its claims).
        """
        delay, tries, lost = 0.05, 0, False
        while True:
            tries += 1
            try:
                conn = await self.get()
                if lost:
                    if after_reconnect is not None:
                        await after_reconnect(conn)
                    self.note_recovered()
                    lost = False
                return await work(conn)
            except RETRYABLE:
                if attempts is not None and tries >= attempts:
                    raise
                await asyncio.sleep(0.001 * tries)
            except LOST as exc:
                if (attempts is not None and tries >= attempts) or (give_up and give_up()):
                    raise
                self.note_failure(exc)
                await self.close()
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def note_failure(self, exc: Exception) -> None:
        """Log the first failure of an outage, not every retry."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning(
                "rhythm: %s connection lost (%s); retrying with backoff", self.purpose, reason
            )

    def note_recovered(self) -> bool:
        """Log the end of an outage; True if there was one."""
        if self._down_since is None:
            return False
        log.warning(
            "rhythm: %s connection restored after %.1fs",
            self.purpose,
            time.monotonic() - self._down_since,
        )
        self._down_since = None
        return True

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None
