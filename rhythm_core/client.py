"""The enqueueing side: create executions, read them, wait for them, cancel them.

One connection per process for blocking callers (guarded by a lock, reopened after fork)
and one per event loop for async callers.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import weakref
from typing import Any

import psycopg

from . import store
from .connections import LOST as _LOST
from .database import connect, connect_async, resolve_database_url
from .errors import ExecutionFailed, ExecutionNotFound
from .ids import start_own_traces
from .migrations import ensure_schema
from .observability.attempt import current_position, position_context
from .observability.creation import Creation
from .observability.manager import active
from .store import Execution, NewExecution

_lock = threading.Lock()
_sync: tuple[int, str, psycopg.Connection[Any]] | None = None
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, psycopg.AsyncConnection[Any]] = (
    weakref.WeakKeyDictionary()
)


def _sync_connection() -> psycopg.Connection[Any]:
    global _sync
    url, source = resolve_database_url()
    if _sync is not None and _sync[0] == os.getpid() and _sync[1] == url and not _sync[2].closed:
        return _sync[2]
    ensure_schema(url, source)
    conn = connect(url, source)
    _sync = (os.getpid(), url, conn)
    return conn


async def _async_connection() -> psycopg.AsyncConnection[Any]:
    loop = asyncio.get_running_loop()
    conn = _async.get(loop)
    if conn is None or conn.closed:
        url, source = resolve_database_url()
        await asyncio.to_thread(ensure_schema, url, source)
        conn = await connect_async(url, source)
        _async[loop] = conn
    return conn


def reset() -> None:
    """Close this process's client connections (after changing the database URL)."""
    global _sync
    with _lock:
        if _sync is not None and _sync[0] == os.getpid():
            _sync[2].close()
        _sync = None
    _async.clear()


def _execute(query: str, params: Any) -> psycopg.Cursor[Any]:
    """Run one idempotent statement; reconnect and retry once if the connection was lost."""
    with _lock:
        try:
            return _sync_connection().execute(query, params)
        except _LOST:
            _sync_connection().close()
            return _sync_connection().execute(query, params)


async def _execute_async(query: str, params: Any) -> psycopg.AsyncCursor[Any]:
    try:
        return await (await _async_connection()).execute(query, params)
    except _LOST:
        await (await _async_connection()).close()
        return await (await _async_connection()).execute(query, params)


def _creation(rows: list[NewExecution]) -> Creation | None:
    """Ids for rows enqueued from this context (always), and with observability on the trace
    fields and the metrics of their creation."""
    start_own_traces(rows)
    obs = active()
    if not obs.enabled:
        return None
    position = current_position()
    parent = position_context(position) if position is not None else None
    return Creation(obs, rows, parent, buffer=position.buffer if position else None)


def insert(rows: list[NewExecution]) -> None:
    if rows:
        creation = _creation(rows)
        _execute(store.INSERT, store.insert_params(rows))
        if creation is not None:
            creation.done()


async def insert_async(rows: list[NewExecution]) -> None:
    if rows:
        creation = _creation(rows)
        await _execute_async(store.INSERT, store.insert_params(rows))
        if creation is not None:
            creation.done()


def _to_execution(execution_id: str, row: tuple[Any, ...] | None) -> Execution:
    if row is None:
        raise ExecutionNotFound(f"no execution has id {execution_id!r}")
    # the JSON columns come as text (store.GET) and are decoded one by one, so that a value
    # that does not decode (nested past the parser's limit) spoils only itself
    return Execution(*row[:5], *map(_decoded, row[5:9]), *row[9:])


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        return f"<the stored value does not decode: {exc!r:.120}>"


def _check_id(execution_id: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(execution_id)))
    except ValueError:
        raise ExecutionNotFound(f"{execution_id!r} is not an execution id (a UUID)") from None


def get_execution(execution_id: str) -> Execution:
    """Read one execution's current state."""
    execution_id = _check_id(execution_id)
    return _to_execution(execution_id, _execute(store.GET, (execution_id,)).fetchone())


async def get_execution_async(execution_id: str) -> Execution:
    execution_id = _check_id(execution_id)
    cursor = await _execute_async(store.GET, (execution_id,))
    return _to_execution(execution_id, await cursor.fetchone())


def _outcome(execution: Execution) -> Any:
    if execution.status == "completed":
        return execution.result
    raise ExecutionFailed(execution.id, execution.function_name, execution.status, execution.error)


def _next_delay(delay: float) -> float:
    return min(delay * 1.5, 0.25)


def wait(execution_id: str, timeout: float | None = None) -> Any:
    """Block until the execution finishes; return its result or raise :class:`ExecutionFailed`.

    Raises :class:`TimeoutError` if it is still unfinished after ``timeout`` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        execution = get_execution(execution_id)
        if execution.finished:
            return _outcome(execution)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"execution {execution_id} is still {execution.status} after {timeout}s"
            )
        time.sleep(delay)
        delay = _next_delay(delay)


async def wait_async(execution_id: str, timeout: float | None = None) -> Any:
    """Async twin of :func:`wait`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        execution = await get_execution_async(execution_id)
        if execution.finished:
            return _outcome(execution)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"execution {execution_id} is still {execution.status} after {timeout}s"
            )
        await asyncio.sleep(delay)
        delay = _next_delay(delay)


def cancel(execution_id: str) -> int:
    """Cancel an unfinished execution and its unfinished descendants; return how many.

    A running execution is stopped by its worker when the worker hears of it; a suspended
    parent is woken so that its ``await child.run()`` raises :class:`ExecutionFailed`.
    """
    execution_id = _check_id(execution_id)
    with _lock:
        conn = _sync_connection()
        with conn.transaction():
            parent = conn.execute(
                "SELECT parent_id::text FROM executions WHERE id = %s", (execution_id,)
            ).fetchone()
            if parent is None:
                raise ExecutionNotFound(f"no execution has id {execution_id!r}")
            if parent[0]:
                conn.execute(store.LOCK_PARENTS, ([parent[0]],))
            row = conn.execute(store.CANCEL, (execution_id, execution_id)).fetchone()
    assert row is not None
    return int(row[0])
