"""The worker's logging: its set-up for the command line (text or one JSON object a line),
and lines that may recur per execution, written at most once a minute per kind.

A fault that hits every row (a poison carrier enqueued in bulk, a failing plugin) must not
write a line per execution: the first one is logged whole, later ones are counted and the
count goes out with the next line of the same kind.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from .current import current_execution
from .errors import ConfigError

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


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the execution, trace and
    span ids when the line is about an execution (given by the engine, or read from the
    execution running in this context), so that logs and traces join on them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        running = current_execution()
        ids = {
            "execution_id": running.id if running else None,
            "trace_id": running.trace_id if running else None,
            "span_id": running._record.span_id if running and running._record else None,
        }
        for key, value in ids.items():
            value = getattr(record, key, None) or value
            if value:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str | None = None, format: str | None = None) -> None:
    """Set up the ``rhythm`` command's logging: ``level`` (``--log-level``, else
    ``RHYTHM_LOG_LEVEL``, else INFO) for rhythm's loggers, ``format`` text or json
    (``--log-format``, else ``RHYTHM_LOG_FORMAT``, else text)."""
    level = _choice(level, "--log-level", "RHYTHM_LOG_LEVEL", LEVELS, "INFO").upper()
    format = _choice(format, "--log-format", "RHYTHM_LOG_FORMAT", FORMATS, "text").lower()
    root = logging.getLogger()
    if not root.handlers:  # an application that set up logging itself keeps its own
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLines() if format == "json" else logging.Formatter(TEXT))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    logging.getLogger("rhythm").setLevel(level)


def _choice(
    given: str | None, flag: str, variable: str, allowed: tuple[str, ...], default: str
) -> str:
    where, value = (flag, given) if given else (variable, os.environ.get(variable) or default)
    if value.upper() not in allowed and value.lower() not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return value
