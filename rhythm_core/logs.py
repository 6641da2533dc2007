"""Log lines that may recur per execution, written at most once a minute per kind.

A fault that hits every row (a poison carrier enqueued in bulk, a failing plugin) must not
write a line per execution: the first one is logged whole, later ones are counted and the
count goes out with the next line of the same kind.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

INTERVAL = 60.0


class Throttled:
    """One logger's lines of one kind, at most one per ``interval`` seconds."""

    def __init__(self, logger: logging.Logger, interval: float = INTERVAL) -> None:
        self._log, self._interval = logger, interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, kind: str, message: str, *args: Any, **kwargs: Any) -> None:
        """Log ``message % args`` unless a line of ``kind`` went out within the interval."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            message += " (%d more like it in the last %.0fs not logged)"
            args = (*args, held, self._interval)
        self._log.log(level, message, *args, **kwargs)
