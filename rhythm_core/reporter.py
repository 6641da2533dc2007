"""Batched reporting of outcomes: whatever finished while the last write was in flight goes
out together in the next one (group commit), so batches grow with load and latency stays low."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import psycopg

from . import store
from .connections import Connection
from .logs import Throttled
from .serialization import encode
from .store import Claimed

log = logging.getLogger("rhythm.worker")
_FINAL = (store.COMPLETED, store.FAILED)


class Outcome(NamedTuple):
    """One attempt's outcome, waiting to be written by :data:`store.REPORT`."""

    id: str
    lease: int  # the lease it was claimed under: a row taken over since is not touched
    kind: str  # store.COMPLETED, FAILED, RETRY or RELEASE
    result: str | None  # JSON
    error: str | None  # JSON
    delay: float  # seconds before a retried or released row may be claimed again
    row: Claimed

    def as_failure(self, error: str) -> Outcome:
        return self._replace(kind=store.FAILED, result=None, error=error, delay=0.0)


# Told of each written batch (rows and kinds, start and end in ns), when observability is on.
Observer = Callable[[Iterable[tuple[Claimed, str]], int, int], None]


class Reporter:
    def __init__(self, connection: Connection, observer: Observer | None = None) -> None:
        self._connection = connection
        self.throttled = Throttled(log)
        self._observer = observer
        self._pending: list[Outcome] = []
        self._writing: list[Outcome] = []  # the batch in flight (retried while it is away)
        self._flushing: asyncio.Task[None] | None = None

    def add(
        self,
        row: Claimed,
        kind: str,
        *,
        result: str | None = None,
        error: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self._pending.append(Outcome(row.id, row.lease, kind, result, error, delay, row))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                self._writing = batch
                started = time.time_ns()
                try:
                    await self._connection.run(functools.partial(self._write, batch=batch))
                    if self._observer is not None:
                        written = [(outcome.row, outcome.kind) for outcome in batch]
                        self._observer(written, started, time.time_ns())
                except Exception as exc:  # lost connections are retried inside run()
                    log.error(
                        "rhythm: writing %d outcome(s) failed (%s); writing them one by one",
                        len(batch),
                        exc,
                    )
                    await self._write_singly(batch)
        finally:
            self._flushing = None
            self._writing = []

    def unwritten(self) -> list[str]:
        """Ids of executions whose outcome is known but not yet written: the worker still
        holds them, and reconnect handling must not hand them back to pending."""
        return [outcome.id for outcome in (*self._writing, *self._pending)]

    async def _write_singly(self, batch: list[Outcome]) -> None:
        """Isolate the outcome the database refuses, and record it as a failure instead."""
        for outcome in batch:
            try:
                await self._connection.run(functools.partial(self._write, batch=[outcome]))
                continue
            except Exception as exc:
                failure = encode(
                    {
                        "type": "OutcomeNotStored",
                        "message": f"the database refused the outcome "
                        f"({outcome.kind}) of this execution: {str(exc).strip()[:500]}",
                    }
                )
            stored = outcome.as_failure(failure)
            try:
                await self._connection.run(functools.partial(self._write, batch=[stored]))
            except Exception:
                log.exception("rhythm: could not record the outcome of execution %s", outcome.id)

    async def _write(self, conn: psycopg.AsyncConnection[Any], *, batch: list[Outcome]) -> None:
        params = store.report_params(batch)
        # a final outcome wakes its parent workflow: lock parents first, in one order
        parents = sorted({o.row.parent_id for o in batch if o.row.parent_id and o.kind in _FINAL})
        if not parents:
            cursor = await conn.execute(store.REPORT, params)
        else:
            async with conn.transaction():
                await conn.execute(store.LOCK_PARENTS, (parents,))
                cursor = await conn.execute(store.REPORT, params)
        row = await cursor.fetchone()
        if row is not None and row[0] < len(batch):
            await self._explain_unwritten(conn, batch)

    async def _explain_unwritten(
        self, conn: psycopg.AsyncConnection[Any], batch: list[Outcome]
    ) -> None:
        """Some outcomes matched no row held under their lease. A final outcome whose row now
        has another lease, or is pending again under ours, was lost to failover: say so (the
        execution runs again elsewhere). Anything else is this write's own earlier try,
        committed before the connection broke."""
        final = {o.id: o for o in batch if o.kind in _FINAL}
        if not final:
            return
        cursor = await conn.execute(store.HELD_STATE, (list(final),))
        for execution_id, status, lease in await cursor.fetchall():
            outcome = final[execution_id]
            if lease != outcome.lease or status == "pending":
                self.throttled.log(
                    logging.WARNING,
                    "outcome lost",
                    "rhythm: the %s outcome of execution %s was not written: it was returned "
                    "to pending while this worker's connection was away (now %s, lease %d, "
                    "was %d); it runs again",
                    outcome.kind,
                    execution_id,
                    status,
                    lease,
                    outcome.lease,
                )

    async def drain(self) -> None:
        """Wait until everything added so far is written."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
