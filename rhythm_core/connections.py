"""A worker's long-lived connections, reopened after the database goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from .database import connect_async

log = logging.getLogger("rhythm.worker")
T = TypeVar("T")

# Conflicts PostgreSQL resolves by aborting one side; the statement is simply run again.
RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class Connection:
    """One connection, opened lazily and reopened (with backoff) after it is lost."""

    def __init__(self, url: str, source: str, purpose: str) -> None:
        self.url, self.source, self.purpose = url, source, purpose
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def get(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await connect_async(self.url, self.source)
        return self._conn

    async def run(
        self,
        work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
        *,
        attempts: int | None = None,
        after_reconnect: Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]] | None = None,
    ) -> T:
        """Run ``work(conn)``; on lost connections and deadlocks, retry with backoff.

        ``attempts=None`` retries until it succeeds (used where giving up would lose data).
        ``after_reconnect`` runs on a new connection before ``work`` is tried again.
        """
        delay, tries, lost = 0.05, 0, False
        while True:
            tries += 1
            try:
                conn = await self.get()
                if lost and after_reconnect is not None:
                    await after_reconnect(conn)
                lost = False
                return await work(conn)
            except RETRYABLE:
                if attempts is not None and tries >= attempts:
                    raise
                await asyncio.sleep(0.001 * tries)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if attempts is not None and tries >= attempts:
                    raise
                log.warning(
                    "rhythm: %s connection failed (%s); retrying in %.1fs",
                    self.purpose,
                    str(exc).strip().splitlines()[0] if str(exc) else exc,
                    delay,
                )
                await self.close()
                lost = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None
