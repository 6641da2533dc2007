"""``@task`` and ``@workflow``: registering functions and enqueueing calls to them."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar, overload

from .errors import ConfigError, NotInWorkflow, SerializationError
from .replay import current_workflow
from .serialization import encode_call
from .store import NewExecution, Step
from .validate import number

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

REGISTRY: dict[str, Function[Any, Any]] = {}
# Bounds ``retries``: attempts are counted in an ``integer`` column, and a bound a person
# could mean keeps a typo (2**31) from failing as a database error at enqueue.
MAX_RETRIES = 10_000


class Function(Generic[P, R]):
    """A registered function: call it directly, ``.queue()`` it, or ``await .run()`` it."""

    kind: ClassVar[str]

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None,
        queue: str,
        retries: int,
        timeout: float | None,
        retry_backoff: float,
        retry_backoff_max: float,
    ) -> None:
        if not isinstance(queue, str) or not queue:
            raise ConfigError(f"queue must be a non-empty string, got {queue!r}")
        number("retries", retries, integer=True, maximum=MAX_RETRIES)
        self.fn = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.queue_name = queue
        self.retries = retries
        self.timeout = number("timeout", timeout, above=True, optional=True)
        self.retry_backoff = number("retry_backoff", retry_backoff)
        self.retry_backoff_max = number("retry_backoff_max", retry_backoff_max)
        self.is_async = inspect.iscoroutinefunction(fn)
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # a builtin or a callable without one
            self._signature = None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        existing = REGISTRY.get(self.name)
        if existing is not None and _where(existing.fn) != _where(fn):
            raise ConfigError(
                f"two functions are registered as {self.name!r} ({_where(existing.fn)} and "
                f"{_where(fn)}); pass name=... to one of them"
            )
        REGISTRY[self.name] = self

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name} queue={self.queue_name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly, in this process, without the engine."""
        return self.fn(*args, **kwargs)

    def new_execution(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        parent_id: str | None = None,
        step: Step | None = None,
    ) -> NewExecution:
        """The row for a call (validated and encoded; raises before anything is written):
        arguments that do not fit the function's signature raise :class:`TypeError` here,
        not after every retry of the execution."""
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.name}{self._signature}: {exc}") from None
        encoded_args, encoded_kwargs = encode_call(self.name, args, kwargs)
        return NewExecution(
            type=self.kind,
            function_name=self.name,
            queue=self.queue_name,
            args=encoded_args,
            kwargs=encoded_kwargs,
            max_retries=self.retries,
            timeout=self.timeout,
            parent_id=parent_id,
            step=step,
        )

    def queue(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Enqueue a call and return the new execution's id (blocking; see :meth:`queue_async`)."""
        from .client import insert

        row = self.new_execution(args, kwargs)
        insert([row])
        return row.id

    async def queue_async(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Enqueue a call from async code and return the new execution's id."""
        from .client import insert_async

        row = self.new_execution(args, kwargs)
        await insert_async([row])
        return row.id

    def queue_many(
        self, calls: Iterable[tuple[Any, ...] | tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> list[str]:
        """Enqueue many calls in one round trip; each item is an args tuple or ``(args, kwargs)``.

        All calls are validated before anything is written.
        """
        from .client import insert

        rows = []
        for index, call in enumerate(calls):
            try:
                rows.append(self.new_execution(*_split_call(call)))
            except (TypeError, SerializationError) as exc:
                raise type(exc)(f"queue_many call {index}: {exc}") from None
        insert(rows)
        return [row.id for row in rows]

    @overload
    def run(
        self: Function[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...
    @overload
    def run(self: Function[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...
    def run(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Inside a workflow: run this function as a durable child step and await its result."""
        run = current_workflow()
        if run is None:
            raise NotInWorkflow(
                f"{self.name}.run() can only be awaited inside a @workflow; "
                f"use {self.name.rsplit('.', 1)[-1]}.queue(...) to enqueue it"
            )
        return run.call(self, args, kwargs)


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(fn)


def _split_call(call: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if (
        isinstance(call, tuple)
        and len(call) == 2
        and isinstance(call[0], tuple)
        and isinstance(call[1], dict)
    ):
        return call[0], call[1]
    if isinstance(call, tuple):
        return call, {}
    return (call,), {}


class Task(Function[P, R]):
    kind = "task"


class Workflow(Function[P, R]):
    kind = "workflow"


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    queue: str = "default",
    retries: int = 3,
    timeout: float | None = 300,
    retry_backoff: float = 1.0,
    retry_backoff_max: float = 300.0,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = "default",
    retries: int = 3,
    timeout: float | None = 300,
    retry_backoff: float = 1.0,
    retry_backoff_max: float = 300.0,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Register a sync or async function as a task.

    :param queue: queue the task's executions are placed on.
    :param retries: attempts after the first one; the n-th retry waits
        ``min(retry_backoff * 2**(n-1), retry_backoff_max)`` seconds.
    :param timeout: seconds one attempt may take (``None``: no limit).
    """

    def wrap(f: Callable[P, R]) -> Task[P, R]:
        return Task(
            f,
            name=name,
            queue=queue,
            retries=retries,
            timeout=timeout,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
        )

    return wrap(fn) if fn is not None else wrap


@overload
def workflow(fn: Callable[P, Awaitable[R]], /) -> Workflow[P, Awaitable[R]]: ...
@overload
def workflow(
    *, name: str | None = None, queue: str = "default"
) -> Callable[[Callable[P, Awaitable[R]]], Workflow[P, Awaitable[R]]]: ...
def workflow(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = "default",
) -> Any:
    """Register an async function as a workflow: it is replayed from the start on each resume
    and must be deterministic; durable steps are ``await some_task.run(...)``."""

    def wrap(f: Callable[P, Awaitable[R]]) -> Workflow[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(f):
            raise ConfigError(f"@workflow needs an async function; {f.__qualname__} is not async")
        return Workflow(
            f,
            name=name,
            queue=queue,
            retries=0,
            timeout=None,
            retry_backoff=0.0,
            retry_backoff_max=0.0,
        )

    return wrap(fn) if fn is not None else wrap
