"""What the running function can learn about its own execution."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .observability.attempt import AttemptRecord


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
    trace_id: str | None = None  # the trace it runs in (``executions.trace_id``)
    # the instrumentation's record of this attempt (None with observability off), kept here
    # rather than in a context variable of its own: one set per execution, not two
    _record: AttemptRecord | None = field(default=None, repr=False, compare=False)


_current: ContextVar[CurrentExecution | None] = ContextVar("rhythm_execution", default=None)


def current_execution() -> CurrentExecution | None:
    """The execution being run in this context, or None outside a worker."""
    return _current.get()
