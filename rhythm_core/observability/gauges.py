"""Cluster gauges (waiting and running executions, active workers), read from the database
every metrics interval by the one worker that holds the gauge lease."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from typing import Any

import psycopg

from .. import store
from ..connections import Connection
from .metering import Meter, seconds

log = logging.getLogger("rhythm.worker")

# A series: ("waiting", queue, type) or ("running", queue, type, worker id or "").
Series = tuple[str, ...]


async def collect(
    meter: Meter, connection: Connection, worker_id: str, stopping: threading.Event
) -> None:
    """Read the gauges every metrics interval until ``stopping`` is set."""
    interval = meter.obs.config.metrics.interval
    seen: set[Series] = set()
    while not stopping.is_set():
        try:
            seen = await connection.run(
                functools.partial(
                    _read, meter=meter, worker_id=worker_id, interval=interval, seen=seen
                ),
                attempts=3,
            )
        except psycopg.Error as exc:
            log.debug("rhythm: gauges not read: %s", exc)
        await asyncio.sleep(interval)


async def _read(
    conn: psycopg.AsyncConnection[Any],
    *,
    meter: Meter,
    worker_id: str,
    interval: float,
    seen: set[Series],
) -> set[Series]:
    start = time.time_ns()
    won = await (await conn.execute(store.GAUGE_LEASE, (worker_id, interval * 0.9))).fetchone()
    if won is None:
        return seen
    waiting = await (await conn.execute(store.GAUGE_WAITING)).fetchall()
    running = await (await conn.execute(store.GAUGE_RUNNING)).fetchall()
    workers = await (await conn.execute(store.GAUGE_WORKERS)).fetchone()
    meter.observe(
        "rhythm.db.query.duration",
        seconds(start, time.time_ns()),
        meter.labels(("operation", "gauges")),
    )
    meter.gauge("rhythm.workers.active", workers[0] if workers else 0, "{worker}", {})
    label_worker = meter.obs.config.metrics.worker_id_label
    now: set[Series] = {("waiting", queue, kind) for queue, kind, _ in waiting}
    now |= {
        ("running", queue, kind, worker if label_worker else "")
        for queue, kind, worker, _ in running
    }
    for queue, kind, n in waiting:
        _send(meter, ("waiting", queue, kind), n)
    for queue, kind, worker, n in running:
        _send(meter, ("running", queue, kind, worker if label_worker else ""), n)
    for gone in seen - now:  # a series that emptied reads 0, not its last value
        _send(meter, gone, 0)
    return now


def _send(meter: Meter, series: Series, value: float) -> None:
    which, queue, kind = series[:3]
    labels = {"queue": queue, "execution_type": kind}
    if which == "running" and series[3]:
        labels["worker_id"] = series[3]
    meter.gauge(f"rhythm.executions.{which}", value, "{execution}", labels)
