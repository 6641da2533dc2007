"""Batched reporting of outcomes: whatever finished while the last write was in flight goes
out together in the next one (group commit), so batches grow with load and latency stays low."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import psycopg

from . import store
from .connections import Connection
from .store import Claimed

# (id, lease, kind, result json, error json, delay seconds, parent id)
Outcome = tuple[str, int, str, str | None, str | None, float, str | None]


class Reporter:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._pending: list[Outcome] = []
        self._flushing: asyncio.Task[None] | None = None
        self.written = 0

    def add(
        self,
        row: Claimed,
        kind: str,
        *,
        result: str | None = None,
        error: str | None = None,
        delay: float = 0.0,
    ) -> None:
        self._pending.append((row.id, row.lease, kind, result, error, delay, row.parent_id))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._connection.run(functools.partial(self._write, batch=batch))
        finally:
            self._flushing = None

    @staticmethod
    async def _write(conn: psycopg.AsyncConnection[Any], *, batch: list[Outcome]) -> None:
        columns = tuple(list(column) for column in zip(*batch, strict=True))
        params = columns[:6]
        parents = sorted({o[6] for o in batch if o[6] and o[2] in (store.COMPLETED, store.FAILED)})
        if not parents:
            await conn.execute(store.REPORT, params)
            return
        async with conn.transaction():
            await conn.execute(store.LOCK_PARENTS, (parents,))
            await conn.execute(store.REPORT, params)

    async def drain(self) -> None:
        """Wait until everything added so far is written."""
        while self._flushing is not None:
            await asyncio.shield(self._flushing)
