"""A worker's long-lived connections, reopened after the database goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from .database import connect_async, connect_kwargs

log = logging.getLogger("rhythm.worker")
T = TypeVar("T")

# Conflicts PostgreSQL resolves by aborting one side; the statement is simply run again.
RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
# The connection is gone (or unusable): reconnect, then try again.
LOST = (psycopg.OperationalError, psycopg.InterfaceError)


# Seconds past the server's statement timeout that the worker waits for an answer before it
# takes the connection for dead: a stalled or half-open connection never answers, and the
# server's own timeout cannot end a statement it never received.
STALL_MARGIN = 5.0
DEFAULT_STATEMENT_TIMEOUT = 30.0
MAX_BACKOFF = 5.0


class Stalled(psycopg.OperationalError):
    """The server did not answer within the statement timeout plus :data:`STALL_MARGIN`."""


def session_kwargs(url: str, statement_timeout: float) -> dict[str, Any]:
    """Connection options for a worker's sessions: TCP keepalives and a user timeout (a dead
    peer is noticed by the kernel), and statement, lock and idle-in-transaction timeouts
    (a statement cannot hold a worker for ever). The URL's own settings win."""
    kwargs = connect_kwargs(url)
    given = conninfo_to_dict(url)
    ms = max(1, int(statement_timeout * 1000))
    defaults = {
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": int((statement_timeout + STALL_MARGIN) * 1000),
    }
    kwargs.update({k: v for k, v in defaults.items() if k not in given})
    ours = (
        f"-c statement_timeout={ms} -c lock_timeout={ms} "
        f"-c idle_in_transaction_session_timeout={2 * ms}"
    )
    kwargs["options"] = f"{ours} {given['options']}" if given.get("options") else ours
    return kwargs


@contextlib.asynccontextmanager
async def answered_within(conn: psycopg.AsyncConnection[Any], seconds: float) -> Any:
    """Raise :class:`Stalled` when ``conn`` gives no answer to the block within ``seconds``.

    The socket is shut down rather than the block cancelled: a cancelled query makes psycopg
    send a cancel request and wait for it, which on a stalled connection waits as long again.
    A shut socket reads as closed at once, and the connection is broken for good.
    """
    severed: list[bool] = []
    timer = asyncio.get_running_loop().call_later(seconds, _sever, conn, severed)
    try:
        yield
    except psycopg.OperationalError as exc:
        if not severed:
            raise
        raise Stalled(
            f"no answer from the server within {seconds:g}s (a stalled or half-open connection)"
        ) from exc
    finally:
        timer.cancel()


def _sever(conn: psycopg.AsyncConnection[Any], severed: list[bool]) -> None:
    severed.append(True)
    with contextlib.suppress(OSError, psycopg.Error):
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class Connection:
    """One connection, opened lazily and reopened (with backoff) after it is lost or stalls.

    :param on_connect: run on each new session before it is used (a worker takes its liveness
        lock there).
    """

    def __init__(
        self,
        url: str,
        source: str,
        purpose: str,
        *,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        on_connect: Callable[[psycopg.AsyncConnection[Any]], Awaitable[object]] | None = None,
    ) -> None:
        self.url, self.source, self.purpose = url, source, purpose
        self.answer_within = statement_timeout + STALL_MARGIN
        self._kwargs = session_kwargs(url, statement_timeout)
        self._on_connect = on_connect
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._down_since: float | None = None
        self.connected_at = 0.0  # time.monotonic() when the current session opened

    async def get(self, *, first: bool = False) -> psycopg.AsyncConnection[Any]:
        """The open connection, reconnecting if needed.

        ``first=True`` turns a failure into :class:`DatabaseUnavailable` with a one-line message
        (for start-up); otherwise psycopg's own error is raised, which :meth:`run` retries.
        """
        if self._conn is None or self._conn.closed or self._conn.broken:
            if first:
                conn = await connect_async(self.url, self.source, **self._kwargs)
            else:
                conn = await psycopg.AsyncConnection.connect(self.url, **self._kwargs)
            if self._on_connect is not None:
                try:
                    async with self.bounded(conn):
                        await self._on_connect(conn)
                except BaseException:
                    await _close(conn)
                    raise
            self._conn, self.connected_at = conn, time.monotonic()
        return self._conn

    def bounded(self, conn: psycopg.AsyncConnection[Any]) -> Any:
        """See :func:`answered_within`, with this connection's bound."""
        return answered_within(conn, self.answer_within)

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
                async with self.bounded(conn):
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
                delay = min(delay * 2, MAX_BACKOFF)

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
            conn, self._conn = self._conn, None
            await _close(conn)


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close without waiting on a peer that may never answer."""
    with contextlib.suppress(psycopg.Error, TimeoutError, OSError):
        await asyncio.wait_for(conn.close(), 2.0)
