"""Replay state of the workflow running in the current context.

A workflow function runs from the start on every resume. Each ``await child.run(...)`` takes
the next step number; a step whose child has finished returns (or raises) its recorded result
at once, and the first step without a finished child blocks. When every branch of the
workflow is blocked the worker suspends it: it records the new children and waits for one of
them to finish. The history is the set of child rows (``parent_id``, ``step``), so nothing is
duplicated between the workflow's row and its children's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .errors import ExecutionFailed, ReplayDivergence
from .store import FINISHED, ChildRecord, NewExecution

if TYPE_CHECKING:
    from .functions import Function

_current: ContextVar[WorkflowRun | None] = ContextVar("rhythm_workflow_run", default=None)


def is_replaying() -> bool:
    """True while a workflow is re-executing steps whose results are already recorded.

    Use it to skip side effects (logging, notifications) that already happened on an
    earlier pass. Outside a workflow it is always False.
    """
    run = _current.get()
    return run is not None and run.replaying


def current_workflow() -> WorkflowRun | None:
    return _current.get()


class WorkflowRun:
    """One pass of one workflow execution over its recorded history."""

    def __init__(self, execution_id: str, function_name: str, history: list[ChildRecord]) -> None:
        self.execution_id = execution_id
        self.function_name = function_name
        self.history = {record.step: record for record in history}
        self._finished_left = sum(1 for r in history if r.status in FINISHED)
        self.replaying = self._finished_left > 0
        self.next_step = 0
        self.new_children: list[NewExecution] = []
        self.awaited_steps: list[int] = []
        self.divergence: ReplayDivergence | None = None
        self.version = 0
        self.blocked = asyncio.Event()

    def call(
        self, fn: Function[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """Take the next step for ``fn(*args, **kwargs)`` and return what awaiting it yields."""
        step = self.next_step
        self.next_step += 1
        record = self.history.get(step)
        if record is None:
            child = fn.new_execution(args, kwargs, parent_id=self.execution_id, step=step)
            return self._start_and_block(child)
        if record.function_name != fn.name:
            self.divergence = ReplayDivergence(
                f"workflow {self.function_name} ({self.execution_id}) diverged from its history "
                f"at step {step}: the history recorded a call to {record.function_name}, "
                f"this replay called {fn.name}"
            )
            raise self.divergence
        if record.status not in FINISHED:
            return self._block(step)
        self._finished_left -= 1
        self.replaying = self._finished_left > 0
        return self._recorded(record)

    async def _recorded(self, record: ChildRecord) -> Any:
        if record.status == "completed":
            return record.result
        raise ExecutionFailed(record.id, record.function_name, record.status, record.error)

    async def _start_and_block(self, child: NewExecution) -> Any:
        self.replaying = False
        self.new_children.append(child)
        return await self._block(child.step)  # type: ignore[arg-type]

    async def _block(self, step: int) -> Any:
        self.awaited_steps.append(step)
        self.version += 1
        self.blocked.set()
        await asyncio.get_running_loop().create_future()  # resolved never: the pass is cut here

    def unrecorded_steps(self) -> list[int]:
        """Recorded steps this pass never reached (a sign the workflow code changed)."""
        return sorted(step for step in self.history if step >= self.next_step)


async def drive(run: WorkflowRun, coro: Awaitable[Any]) -> tuple[bool, Any]:
    """Run one pass of a workflow; return ``(True, result)`` or ``(False, None)`` if it must wait.

    The pass is suspended once some step is blocked and a few loop turns bring no new step, so
    every branch of an ``asyncio.gather`` gets to start its child before the pass ends.
    """
    token = _current.set(run)
    try:
        task = asyncio.ensure_future(coro)
    finally:
        _current.reset(token)
    try:
        while not task.done():
            if not run.awaited_steps:
                waiter = asyncio.ensure_future(run.blocked.wait())
                await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                continue
            seen = run.version
            for _ in range(3):
                await asyncio.sleep(0)
            if not task.done() and seen == run.version:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return False, None
    except asyncio.CancelledError:
        task.cancel()
        raise
    return True, task.result()
