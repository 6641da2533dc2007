"""Deleting finished executions once they are old: by the workers, and by ``rhythm prune``.

A finished root (a task or workflow enqueued from outside) older than the retention age is
deleted with its whole tree (a workflow's children, their children...), once everything in
the tree is finished. Deletion goes a batch of roots at a time, each batch its own short
statement, so that claims and reports never wait behind it; one worker at a time prunes.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from . import store
from .errors import ConfigError

DEFAULT = 7 * 86400.0  # seconds: a week
ENV = "RHYTHM_RETENTION"
BATCH = 200  # roots a statement
EVERY = 60.0  # seconds between a worker's pruning rounds
FIRST_AFTER = 5.0  # seconds from a worker's start to its first round
PAUSE = 0.05  # seconds between two batches
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")


def parse_age(key: str, value: object) -> float | None:
    """Seconds from ``7d``, ``12h``, ``30m``, ``90s``, ``2w`` or a number of seconds; None
    (keep everything) from ``0``, ``off`` or ``never``; anything else is refused naming
    ``key``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be an age such as 7d, 12h or off, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text in ("off", "never", "none", "0"):
            return None
        match = _AGE.fullmatch(text)
        if match is None:
            raise ConfigError(
                f"{key} must be an age such as 7d, 12h, 30m or 90s, or off to keep every "
                f"execution, got {value!r}"
            )
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise ConfigError(f"{key} must be a finite age of 0 or more, got {value!r}")
    return seconds or None


def configured(given: object | None) -> float | None:
    """The retention age: ``given`` (a worker option), else ``RHYTHM_RETENTION``, else a week."""
    if given is not None:
        return parse_age("Worker retention", given)
    if os.environ.get(ENV):
        return parse_age(ENV, os.environ[ENV])
    return DEFAULT


def describe(seconds: float | None) -> str:
    if seconds is None:
        return "kept forever"
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


@dataclass(slots=True)
class Pruned:
    """What a pruning round removed."""

    roots: int = 0
    rows: int = 0

    def add(self, batch: Any, size: int) -> bool:
        """Count one PRUNE batch's (roots looked at, roots removed, rows removed); True when
        another batch may find more (this one was full, and removed something)."""
        looked, roots, rows = batch
        self.roots += roots
        self.rows += rows
        return bool(looked >= size and roots)


async def prune(
    run: Callable[[Any], Any],
    older_than: float,
    *,
    batch: int = BATCH,
    stopping: Callable[[], bool] = lambda: False,
    pause: float = PAUSE,
) -> Pruned:
    """Delete what is older than ``older_than`` seconds, a batch at a time, until a batch
    finds less than a full batch (or another worker holds the pruning lock, or ``stopping``).
    ``run(work)`` runs ``work(conn)`` on a connection (``Connection.run``)."""
    total = Pruned()
    params = {"older_than": older_than, "batch": batch}
    while not stopping():
        cursor = await run(lambda conn: conn.execute(store.PRUNE, params))
        if not total.add(await cursor.fetchone(), batch):
            break
        await asyncio.sleep(pause)  # room for claims between batches
    return total


def prune_now(conn: psycopg.Connection[Any], older_than: float, *, dry_run: bool) -> Pruned:
    """``rhythm prune``: everything older than ``older_than`` seconds, or what would go."""
    if dry_run:
        found = conn.execute(store.PRUNE_PREVIEW, {"older_than": older_than}).fetchone()
        assert found is not None
        return Pruned(roots=found[1], rows=found[0])
    total = Pruned()
    params = {"older_than": older_than, "batch": BATCH}
    while total.add(conn.execute(store.PRUNE, params).fetchone(), BATCH):
        time.sleep(PAUSE)  # room for the workers' claims between batches
    return total
