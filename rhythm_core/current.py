"""What the running function can learn about its own execution."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class CurrentExecution:
    """The execution a worker is running in this context."""

    id: str
    function_name: str
    type: str
    queue: str
    attempt: int
    max_retries: int
    worker_id: str


_current: ContextVar[CurrentExecution | None] = ContextVar("rhythm_execution", default=None)


def current_execution() -> CurrentExecution | None:
    """The execution being run in this context, or None outside a worker."""
    return _current.get()
