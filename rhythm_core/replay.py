"""Replay state of the workflow running in the current context.

A workflow function runs from the start on every resume. Each ``await child.run(...)`` takes
the next step; a step whose child has finished returns (or raises) its recorded result at
once, and the first step without a finished child blocks. When every branch of the workflow
is blocked the worker suspends it: it records the new children and waits for one of them to
finish. The history is the set of child rows (``parent_id``, ``step``), so nothing is
duplicated between the workflow's row and its children's.

Steps are numbered per asyncio task: a step is the path of the task that took it (each task
the workflow creates is numbered in its creator's sequence) plus its position in that task.
Numbering across the whole workflow would depend on how concurrent branches interleave,
which changes once their earlier steps replay instantly from the history.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .errors import ExecutionFailed, ReplayDivergence
from .store import FINISHED, ChildRecord, NewExecution, Step

if TYPE_CHECKING:
    from .functions import Function

_current: ContextVar[WorkflowRun | None] = ContextVar("rhythm_workflow_run", default=None)
_scope: ContextVar[Step] = ContextVar("rhythm_workflow_scope", default=())


def is_replaying() -> bool:
    """True while a workflow is re-executing steps whose results are already recorded.

    Use it to skip side effects (logging, notifications) that already happened on an
    earlier pass. Outside a workflow it is always False.
    """
    run = _current.get()
    return run is not None and run.replaying


def current_workflow() -> WorkflowRun | None:
    return _current.get()


def step_label(step: Step) -> str:
    return ".".join(map(str, step))


class WorkflowRun:
    """One pass of one workflow execution over its recorded history."""

    def __init__(self, execution_id: str, function_name: str, history: list[ChildRecord]) -> None:
        self.execution_id = execution_id
        self.function_name = function_name
        self.history = {tuple(record.step): record for record in history}
        self._finished_left = sum(1 for r in history if r.status in FINISHED)
        self.replaying = self._finished_left > 0
        self._counters: dict[Step, int] = {}
        self.new_children: list[NewExecution] = []
        self.awaited_steps: list[Step] = []
        self.divergence: ReplayDivergence | None = None
        self.version = 0
        self.blocked = asyncio.Event()
        # makes the pass's span current in the backends' own contexts, unsampled while
        # replaying (given ``replaying``); None when no provider does that
        self.activate: Callable[[bool], AbstractContextManager[None] | None] | None = None

    def next_in(self, scope: Step) -> Step:
        position = self._counters.get(scope, 0)
        self._counters[scope] = position + 1
        return (*scope, position)

    def call(
        self, fn: Function[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[Any]:
        """Take the next step for ``fn(*args, **kwargs)`` and return what awaiting it yields."""
        step = self.next_in(_scope.get())
        record = self.history.get(step)
        if record is None:
            child = fn.new_execution(args, kwargs, parent_id=self.execution_id, step=step)
            return self._start_and_block(child, step)
        if record.function_name != fn.name:
            self.divergence = ReplayDivergence(
                f"workflow {self.function_name} ({self.execution_id}) diverged from its history "
                f"at step {step_label(step)}: the history recorded a call to "
                f"{record.function_name}, this replay called {fn.name}"
            )
            raise self.divergence
        if record.status not in FINISHED:
            return self._block(step)
        self._finished_left -= 1
        self.replaying = self._finished_left > 0
        return self._recorded(record, caught_up=not self.replaying and self.activate is not None)

    async def _recorded(self, record: ChildRecord, caught_up: bool = False) -> Any:
        if caught_up:
            # the last recorded step: let the task be resumed afresh, so that the code after
            # it runs with the pass's span current instead of the replay's unsampled one
            await asyncio.sleep(0)
        if record.status == "completed":
            return record.result
        raise ExecutionFailed(record.id, record.function_name, record.status, record.error)

    async def _start_and_block(self, child: NewExecution, step: Step) -> Any:
        self.replaying = False
        self.new_children.append(child)
        return await self._block(step)

    async def _block(self, step: Step) -> Any:
        self.awaited_steps.append(step)
        self.version += 1
        self.blocked.set()
        await asyncio.get_running_loop().create_future()  # resolved never: the pass is cut here

    def unreached_steps(self) -> list[Step]:
        """Recorded steps of the workflow's own task that this pass never reached.

        Only the top-level task is checked: a branch may legitimately be abandoned when the
        workflow returns, the workflow function itself may not.
        """
        reached = self._counters.get((), 0)
        return sorted(step for step in self.history if len(step) == 1 and step[0] >= reached)


class Activated(Coroutine[Any, Any, Any]):
    """A workflow task's coroutine whose every resumption runs with the pass's span current
    in the backends' own contexts: unsampled while the pass replays recorded steps (what the
    application's instrumentation opens then was recorded by the pass that first ran that
    code), the pass's own span once it has caught up. Deciding at each resumption, rather
    than once per task, lets every branch of the workflow follow the replay as it ends."""

    __slots__ = ("_coro", "_run")

    def __init__(self, coro: Coroutine[Any, Any, Any], run: WorkflowRun) -> None:
        self._coro = coro
        self._run = run

    def send(self, value: Any) -> Any:
        return self._resume(self._coro.send, value)

    def throw(self, *args: Any) -> Any:
        return self._resume(self._coro.throw, *args)

    def _resume(self, step: Callable[..., Any], *args: Any) -> Any:
        assert self._run.activate is not None
        active = self._run.activate(self._run.replaying)
        if active is None:
            return step(*args)
        with active:
            return step(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()


def _task_factory(previous: Any) -> Any:
    """Give each task created inside a workflow its own step scope, numbered in its creator's."""

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> Any:
        context: contextvars.Context | None = kwargs.get("context")
        run = _current.get() if context is None else context.get(_current)
        if run is not None:
            context = contextvars.copy_context() if context is None else context.copy()
            context.run(_scope.set, run.next_in(context.get(_scope, ())))
            kwargs["context"] = context
            if run.activate is not None:
                coro = Activated(coro, run)
        if previous is None:
            return asyncio.Task(coro, loop=loop, **kwargs)
        return previous(loop, coro, **kwargs)

    factory.rhythm_scopes = True  # type: ignore[attr-defined]
    return factory


def _ensure_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    previous = loop.get_task_factory()
    if not getattr(previous, "rhythm_scopes", False):
        loop.set_task_factory(_task_factory(previous))


async def drive(run: WorkflowRun, coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run one pass of a workflow; return ``(True, result)`` or ``(False, None)`` if it must wait.

    The pass is suspended once some step is blocked and a few loop turns bring no new step, so
    every branch of an ``asyncio.gather`` gets to start its child before the pass ends.
    """
    loop = asyncio.get_running_loop()
    _ensure_task_factory(loop)
    context = contextvars.copy_context()
    context.run(_current.set, run)
    context.run(_scope.set, ())
    task = asyncio.Task(
        coro if run.activate is None else Activated(coro, run), loop=loop, context=context
    )
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
