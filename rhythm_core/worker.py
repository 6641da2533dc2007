"""The worker: claims executions in batches, runs them, reports outcomes, keeps a heartbeat,
recovers executions of dead workers, and stops without losing anything."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from . import retention, store, variables
from .connections import (
    DEFAULT_STATEMENT_TIMEOUT,
    MAX_BACKOFF,
    RETRYABLE,
    Connection,
    answered_within,
    session_kwargs,
)
from .connections import LOST as _LOST
from .current import CurrentExecution, _current
from .database import resolve_database_url
from .errors import (
    AttemptAborted,
    ConfigError,
    ExecutionTimeout,
    ReplayDivergence,
    SerializationError,
    UnknownFunction,
)
from .functions import REGISTRY, Function
from .ids import join_trace
from .logs import Throttled
from .migrations import ensure_schema
from .observability import gauges
from .observability.attempt import activation
from .observability.instruments import Instruments
from .observability.manager import Observability, activate, from_block
from .replay import WorkflowRun, drive, step_label
from .reporter import Reporter
from .retention import configured as retention_age
from .serialization import encode, encode_result, readable, storable_text, traceback_text
from .store import Claimed
from .validate import number

log = logging.getLogger("rhythm.worker")
T = TypeVar("T")

_SUSPENDED = object()
# Seconds past shutdown_timeout that a stop may take to write the last outcomes and the
# stopped state before the process exits regardless.
SHUTDOWN_GRACE = 5.0
# Seconds the observability plugins are given to send what they hold at a stop when running
# executions took all of shutdown_timeout (otherwise they get what is left of it).
MIN_FLUSH = 1.0
# Seconds of shutdown_timeout kept for the process to exit once the plugins are stopped.
EXIT_RESERVE = 0.5


class _DatabaseLost(Exception):
    """The database went away while the engine (not user code) was replaying or suspending a
    workflow: no fault of the workflow, so it returns to pending rather than failing."""


# Errors a retry cannot fix: the execution fails at once whatever its retries.
_FINAL_ERRORS = (UnknownFunction, SerializationError, ReplayDivergence)
_TRACEBACK_LIMIT = 8000


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):  # the module itself, not its imports
            raise ConfigError(
                f"cannot import module {module!r} (from -m/modules): {exc}; run the worker "
                "from the directory that contains it, or install it"
            ) from None
        raise


async def _within(active: AbstractContextManager[None], call: Awaitable[Any]) -> Any:
    """Await an async function's coroutine with its attempt's span current in the backends'
    contexts: entered and left in the execution's own asyncio task."""
    with active:
        return await call


def _called_within(
    active: AbstractContextManager[None], fn: Any, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    """Call a sync function, in its pool thread, with its attempt's span current."""
    with active:
        return fn(*args, **kwargs)


def _decode_call(row: Claimed) -> tuple[list[Any], dict[str, Any]]:
    """A claimed row's arguments; a row whose columns do not decode to a list and an object
    fails for good (a retry would read the same bytes)."""
    if row.record is not None:
        row.record.decode_start = time.time_ns()
    try:
        args, kwargs = json.loads(row.args), json.loads(row.kwargs)
    except (ValueError, RecursionError) as exc:
        raise SerializationError(f"the stored arguments do not decode: {exc!r:.200}") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise SerializationError(
            f"the stored arguments are a JSON {type(args).__name__} and "
            f"{type(kwargs).__name__}, not an array and an object"
        )
    return args, kwargs


def _encode_result(row: Claimed, result: Any) -> str:
    encoded = encode_result(row.function_name, result)
    if row.record is not None:  # encoding began where the call ended
        row.record.encode_end = time.time_ns()
        row.record.result_size = len(encoded)
    return encoded


def _described(exc: BaseException) -> tuple[str, str]:
    """(type name, message) of what user code raised, whatever it holds: the original of an
    :class:`AttemptAborted`, and a message even when the exception's ``__str__`` raises."""
    shown = exc.original if isinstance(exc, AttemptAborted) else exc
    return type(shown).__name__, readable(exc)


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for the log."""
    kind, message = _described(exc)
    text = f"{kind}: {message}" if message else kind
    return storable_text(" ".join(text.split()))[:500]


def error_document(exc: BaseException, attempt: int) -> str:
    """The ``error`` column for a failed attempt. Never raises: whatever the exception holds
    (NUL, lone surrogates, a ``__str__`` that raises) is written so that jsonb stores it."""
    kind, message = _described(exc)
    text = traceback_text(exc)
    return encode(
        {
            "type": storable_text(kind),
            "message": storable_text(message),
            "attempt": attempt,
            "traceback": storable_text(text[-_TRACEBACK_LIMIT:]),
        }
    )


class Worker:
    """Runs executions from one or more queues.

    :param queues: queue names to claim from.
    :param concurrency: executions run at once (async functions as tasks, sync ones in threads).
    :param modules: modules to import so that their ``@task``/``@workflow`` functions register.
    :param database_url: overrides ``RHYTHM_DATABASE_URL``.
    :param poll_interval: seconds between claims when no notification arrives.
    :param heartbeat_interval: seconds between heartbeats and dead-worker checks.
    :param dead_after: seconds without a heartbeat after which a worker is declared dead and
        its running executions return to pending.
    :param shutdown_timeout: seconds a graceful stop waits for running executions before it
        releases them back to pending.
    :param observability: the observability block (see docs/observability.md), or None for
        the process's (``rhythm_core.configure(observability=...)``, else ``RHYTHM_*``).
    :param statement_timeout: seconds any one statement of the engine may run; the server
        cancels it past that, and a connection that gives no answer for 5 s more is taken for
        dead (stalled or half-open) and reopened.
    :param retention: how long finished executions are kept: an age (``"7d"``, ``"12h"``,
        seconds) or ``"off"``; default ``RHYTHM_RETENTION``, else 7 days. One worker at a time
        deletes older ones, a root with its whole tree, in small batches.
    :param claim_batch: most rows one claim takes (default ``min(concurrency, 50)``); larger
        batches raise throughput of tiny tasks and the latency of each claim (BENCHMARKS.md).
    """

    def __init__(
        self,
        queues: Sequence[str] | str = ("default",),
        *,
        concurrency: int = 10,
        modules: Iterable[str] = (),
        database_url: str | None = None,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 5.0,
        dead_after: float = 30.0,
        shutdown_timeout: float = 30.0,
        claim_batch: int | None = None,
        worker_id: str | None = None,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        retention: str | float | None = None,
        observability: Mapping[str, Any] | Observability | None = None,
    ) -> None:
        self.queues = [queues] if isinstance(queues, str) else list(queues)
        if not self.queues or not all(isinstance(q, str) and q for q in self.queues):
            raise ConfigError(f"Worker queues must be non-empty strings, got {queues!r}")
        self.concurrency = number("Worker concurrency", concurrency, minimum=1, integer=True)
        self.poll_interval = number("Worker poll_interval", poll_interval, above=True)
        self.heartbeat_interval = number(
            "Worker heartbeat_interval", heartbeat_interval, above=True
        )
        self.dead_after = number("Worker dead_after", dead_after, above=True)
        if self.dead_after <= self.heartbeat_interval:
            raise ConfigError(
                f"Worker dead_after ({dead_after}) must exceed heartbeat_interval "
                f"({heartbeat_interval}), or live workers would be declared dead"
            )
        self.shutdown_timeout = number("Worker shutdown_timeout", shutdown_timeout)
        self.statement_timeout = number("Worker statement_timeout", statement_timeout, above=True)
        self.retention = retention_age(retention)
        self.claim_batch = number(
            "Worker claim_batch",
            min(self.concurrency, 50) if claim_batch is None else claim_batch,
            minimum=1,
            integer=True,
        )
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # Decided once: when off, no plugin is loaded and no hook is ever called.
        self._obs = from_block(observability)
        self._owns_observability = isinstance(observability, Mapping)
        self._stop_began: float | None = None
        if self._owns_observability:
            activate(self._obs)  # .queue() and rhythm_core.trace/metrics in this process
        self._claim_sql = store.CLAIM if self._obs.tracing else store.CLAIM_UNTRACED
        self._instruments = Instruments(self._obs, self.worker_id) if self._obs.enabled else None
        self._database_url = database_url
        self._modules = list(modules)
        for module in self._modules:
            _import(module)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._throttled = Throttled(log)  # lines that may recur per execution
        self._liveness_held = False
        self._cancel_requested: set[str] = set()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._slot: asyncio.Event | None = None
        self.lingering_threads = 0
        self._threads_busy = 0
        self._busy_lock = threading.Lock()

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`stop`), then stop gracefully."""
        asyncio.run(self.run_async(handle_signals=True))

    def start_in_thread(self) -> threading.Thread:
        """Run the worker in a background thread (for tests and embedding); see :meth:`stop`."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(self.run_async(ready=ready))
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                raise

        thread = threading.Thread(
            target=target, name=f"rhythm-worker-{self.worker_id}", daemon=True
        )
        thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return thread

    def stop(self) -> None:
        """Ask the worker to stop gracefully; safe to call from any thread or a signal handler."""
        self._stopping.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for event in (self._wake, self._slot):
            if event is not None:
                event.set()

    async def run_async(
        self, *, handle_signals: bool = False, ready: threading.Event | None = None
    ) -> None:
        """Run in the current event loop until :meth:`stop` is called."""
        loop = self._loop = asyncio.get_running_loop()
        self._wake, self._slot, self._hurry = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._listening = asyncio.Event()
        url, source = resolve_database_url(self._database_url)
        await asyncio.to_thread(ensure_schema, url, source)
        limit = self.statement_timeout
        self._claim_conn = Connection(url, source, "claim", statement_timeout=limit)
        self._report_conn = Connection(url, source, "report", statement_timeout=limit)
        # this session holds the worker's liveness lock: when the process dies, the server
        # ends the session and frees the lock, and other workers see it at their next check
        self._maint_conn = Connection(
            url, source, "heartbeat", statement_timeout=limit, on_connect=self._take_liveness
        )
        await self._claim_conn.get(first=True)  # fail fast, in one line, if unreachable
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=min(4, self.concurrency),
            open=False,
            kwargs=session_kwargs(url, limit),
        )
        await self._pool.open()
        instruments = self._instruments
        self._reporter = Reporter(self._report_conn, instruments.reported if instruments else None)
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="rhythm-task")
        await self._heartbeat("active")
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal)
        background = [
            loop.create_task(self._listen(url, source)),
            loop.create_task(self._maintain()),
        ]
        if self.retention is not None:
            background.append(loop.create_task(self._prune()))
        if instruments is not None and instruments.metering:
            gauges_read = gauges.collect(
                instruments, self._maint_conn, self.worker_id, self._stopping
            )
            background.append(loop.create_task(gauges_read))
        with contextlib.suppress(TimeoutError):  # notifications sent from now on wake us
            await asyncio.wait_for(self._listening.wait(), 5.0)
        log.info(
            "rhythm: worker %s claiming from %s (concurrency %d); finished executions %s; %s",
            self.worker_id,
            ", ".join(self.queues),
            self.concurrency,
            f"kept {retention.describe(self.retention)}"
            if self.retention is not None
            else "kept forever",
            self._obs.describe(),
        )
        self._warn_of_mistakes()
        if ready is not None:
            ready.set()
        try:
            await self._claim_loop()
        finally:
            await self._shutdown(background)
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def _warn_of_mistakes(self) -> None:
        """Say at start what would otherwise leave work undone without a word: a misspelt
        variable, functions of queues this worker does not claim from."""
        for name, close in variables.unknown(declared=self._obs.declared_variables()):
            hint = f"; did you mean {close}?" if close else ""
            log.warning("rhythm: %s is not a variable rhythm reads (ignored)%s", name, hint)
        missed: dict[str, list[str]] = {}
        for fn in REGISTRY.values():
            module = fn.fn.__module__
            loaded = any(module == m or module.startswith(f"{m}.") for m in self._modules)
            if loaded and fn.queue_name not in self.queues:
                missed.setdefault(fn.queue_name, []).append(fn.name)
        for queue, names in sorted(missed.items()):
            log.warning(
                "rhythm: %s from the loaded modules run on queue %r, which this worker does "
                "not claim from; add -q %s (or Worker(queues=[..., %r])) to run them here",
                ", ".join(sorted(names)[:3]) + (" and more" if len(names) > 3 else ""),
                queue,
                queue,
                queue,
            )

    def _on_signal(self) -> None:
        if self._stopping.is_set():
            log.warning("rhythm: second signal: releasing running executions now")
            self._hurry.set()
        else:
            log.info("rhythm: stopping: finishing %d running execution(s)", len(self._inflight))
        self.stop()

    # -- claiming ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        assert self._wake is not None and self._slot is not None
        while not self._stopping.is_set():
            free = self.concurrency - len(self._inflight)
            if free <= 0:
                self._slot.clear()
                await self._slot.wait()
                continue
            self._wake.clear()
            asked = min(free, self.claim_batch)
            claim_start = time.time_ns()
            try:
                rows = await self._claim_conn.run(
                    functools.partial(self._claim, limit=asked),
                    after_reconnect=self._release_lost,
                    give_up=self._stopping.is_set,
                )
            except _LOST:
                break  # stopping while the database is away: nothing was claimed
            if self._instruments is not None:
                self._instruments.claimed(rows, self.queues, claim_start, time.time_ns())
            if self._stopping.is_set():
                for row in rows:
                    self._reporter.add(row, store.RELEASE)
                break
            for row in rows:
                self._start(row)
            if len(rows) < asked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _claim(self, conn: psycopg.AsyncConnection[Any], limit: int) -> list[Claimed]:
        params = (self.worker_id, self.queues, limit, limit)
        # never prepared (store.CLAIM says why)
        cursor = await conn.execute(self._claim_sql, params, prepare=False)
        return [Claimed(*row) for row in await cursor.fetchall()]

    async def _release_lost(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """After the claim connection broke, a claim may have committed unseen: return rows
        that name this worker but that it is not running to pending."""
        held = [*self._inflight, *self._reporter.unwritten()]  # finished bodies too
        cursor = await conn.execute(store.RELEASE_LOST, (self.worker_id, held))
        row = await cursor.fetchone()
        if row and row[0]:
            log.warning("rhythm: returned %d execution(s) claimed by a lost connection", row[0])

    def _start(self, row: Claimed) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._execute(row))
        self._inflight[row.id] = task
        task.add_done_callback(functools.partial(self._done, row))

    def _done(self, row: Claimed, task: asyncio.Task[None]) -> None:
        self._inflight.pop(row.id, None)
        self._cancel_requested.discard(row.id)
        assert self._slot is not None
        self._slot.set()
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            # _execute reports every outcome itself; this is the net under a fault of the
            # engine's own, so that the row still ends with a stored outcome
            self._throttled.log(
                logging.ERROR,
                "internal",
                "rhythm: execution %s failed inside the engine: %r",
                row.id,
                exc,
                exc_info=exc,
            )
            self._reporter.add(row, store.FAILED, error=error_document(exc, row.attempt))

    def _wake_at(self, delay: float) -> None:
        assert self._loop is not None and self._wake is not None
        self._loop.call_later(delay, self._wake.set)

    # -- running one execution -------------------------------------------------------------

    async def _execute(self, row: Claimed) -> None:
        """Decode, call, encode, report: every outcome of the attempt is reported here."""
        fn = REGISTRY.get(row.function_name)
        record = row.record  # the attempt's timings; None with observability off
        try:
            _current.set(
                CurrentExecution(
                    row.id,
                    row.function_name,
                    row.type,
                    row.queue,
                    row.attempt,
                    row.max_retries,
                    self.worker_id,
                    record.trace_id if record is not None and record.trace_id else row.trace_id,
                    record,
                )
            )
            if record is not None and record.trace_problem is not None:
                await self._check_trace(row)
            args, kwargs = _decode_call(row)
            if fn is None:
                raise UnknownFunction(
                    f"no function named {row.function_name!r} is registered in worker "
                    f"{self.worker_id}; import the module that defines it (rhythm worker -m ...)"
                )
            result = await self._call(fn, row, args, kwargs)
            if result is _SUSPENDED:
                return
            encoded = _encode_result(row, result)
        except asyncio.CancelledError:
            if row.id not in self._cancel_requested:  # cancelled rows are already final
                self._reporter.add(row, store.RELEASE)
            return
        except _DatabaseLost as exc:
            log.warning("rhythm: releasing %s after a database error: %s", row.id, exc.__cause__)
            self._reporter.add(row, store.RELEASE, delay=1.0)
            return
        except Exception as exc:
            if record is not None:
                Instruments.failed_around(row, exc)
            self._report_failure(fn, row, exc)
        else:
            self._reporter.add(row, store.COMPLETED, result=encoded)

    async def _call(
        self, fn: Function[Any, Any], row: Claimed, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """The function's body (a task) or one pass (a workflow). SystemExit,
        KeyboardInterrupt and the like from user code fail the attempt: let through, they
        would stop the worker and abandon what it holds."""
        record = row.record
        if record is not None:
            record.start = time.time_ns()
        try:
            if row.type == "workflow":
                result = await self._run_workflow(fn, row, args, kwargs)
            else:
                result = await self._run_task(fn, row, args, kwargs)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else AttemptAborted(exc)
            if record is not None and not isinstance(failure, _DatabaseLost):
                Instruments.raised(row, failure)
            if failure is exc:
                raise
            raise failure from exc
        if record is not None:
            record.end = time.time_ns()
        return result

    async def _check_trace(self, row: Claimed) -> None:
        """A row whose trace context was unusable runs in a new root trace: say so, and write
        the new ids back so that the database and the backends agree."""
        assert row.record is not None and row.record.context is not None
        context = row.record.context
        self._throttled.log(
            logging.WARNING,
            "unusable trace context",
            "rhythm: execution %s has an unusable trace context (%s); it runs in a new trace %s",
            row.id,
            context.problem,
            context.trace_id,
        )
        carrier = encode({"rhythm-sampled": "1" if context.sampled else "0"})
        params = (context.trace_id, context.span_id, carrier, row.id, row.lease)
        with contextlib.suppress(psycopg.Error):
            await self._pool_run(lambda conn: conn.execute(store.REPLACE_TRACE, params))

    async def _run_task(
        self, fn: Function[Any, Any], row: Claimed, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        active = activation(self._obs, row.record)  # the attempt's span, current in backends
        if fn.is_async:
            call = fn.fn(*args, **kwargs)
            if active is not None:
                call = _within(active, call)
        else:
            assert self._loop is not None
            context = contextvars.copy_context()
            call = self._loop.run_in_executor(
                self._threads,
                functools.partial(self._in_thread, context, fn.fn, args, kwargs, active),
            )
        if row.timeout is None:
            return await call
        try:
            async with asyncio.timeout(row.timeout) as scope:
                return await call
        except TimeoutError:
            if scope.expired():
                raise ExecutionTimeout(
                    f"{row.function_name} exceeded its timeout of {row.timeout:g}s "
                    f"(attempt {row.attempt})"
                ) from None
            raise

    def _in_thread(
        self,
        context: contextvars.Context,
        fn: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        active: AbstractContextManager[None] | None,
    ) -> Any:
        with self._busy_lock:
            self._threads_busy += 1
        try:
            if active is None:
                return context.run(fn, *args, **kwargs)
            return context.run(_called_within, active, fn, args, kwargs)
        finally:
            with self._busy_lock:
                self._threads_busy -= 1

    def _report_failure(self, fn: Function[Any, Any] | None, row: Claimed, exc: Exception) -> None:
        error = error_document(exc, row.attempt)
        final = (
            fn is None
            or row.type == "workflow"
            or isinstance(exc, _FINAL_ERRORS)
            or row.attempt > row.max_retries
        )
        ids = {"execution_id": row.id, "trace_id": row.trace_id}
        if fn is None or final:
            log.error(
                "rhythm: %s %s failed for good on attempt %d of %d: %s",
                row.function_name,
                row.id,
                row.attempt,
                row.max_retries + 1,
                _one_line(exc),
                exc_info=exc,
                extra=ids,
            )
            self._reporter.add(row, store.FAILED, error=error)
            return
        # the exponent is capped: a row may carry any attempt, and 2.0 ** 1024 overflows
        doublings = min(row.attempt - 1, 64)
        delay = min(fn.retry_backoff * 2**doublings, fn.retry_backoff_max)
        delay *= 1 + random.random() * 0.1  # spread retries of a failed batch; never shorter
        log.warning(
            "rhythm: %s %s failed on attempt %d of %d: %s; retrying in %.1fs",
            row.function_name,
            row.id,
            row.attempt,
            row.max_retries + 1,
            _one_line(exc),
            delay,
            extra=ids,
        )
        self._reporter.add(row, store.RETRY, error=error, delay=delay)
        self._wake_at(delay)

    async def _run_workflow(
        self, fn: Function[Any, Any], row: Claimed, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        try:
            async with (
                self._pool.connection() as conn,
                answered_within(conn, self._claim_conn.answer_within),
            ):
                cursor = await conn.execute(store.HISTORY, (row.id,))
                history = [store.ChildRecord(*r) for r in await cursor.fetchall()]
        except _LOST as exc:
            raise _DatabaseLost from exc
        row.history_size = len(history)
        run = WorkflowRun(row.id, row.function_name, history)
        if self._obs.activating:
            run.activate = functools.partial(activation, self._obs, row.record)
        try:
            finished, result = await drive(run, fn.fn(*args, **kwargs))
        except Exception:
            if run.divergence is not None:
                raise run.divergence from None
            raise
        if run.divergence is not None:  # raised inside the workflow, and swallowed by it
            raise run.divergence
        if finished:
            missing = run.unreached_steps()
            if missing:
                raise ReplayDivergence(
                    f"workflow {row.function_name} ({row.id}) diverged from its history: it "
                    f"returned without reaching recorded step(s) "
                    f"{', '.join(map(step_label, missing))}"
                )
            return result
        join_trace(run.new_children, row.trace_id)
        write = self._write_suspend(row, run)
        if self._instruments is None:
            await write
        else:
            await self._instruments.suspend(row, run.new_children, write)
        return _SUSPENDED

    async def _write_suspend(self, row: Claimed, run: WorkflowRun) -> None:
        try:
            await self._pool_run(functools.partial(self._suspend, row=row, run=run))
        except _LOST as exc:
            raise _DatabaseLost from exc

    async def _pool_run(self, work: Any) -> None:
        for attempt in range(1, 6):
            try:
                async with (
                    self._pool.connection() as conn,
                    answered_within(conn, self._claim_conn.answer_within),
                ):
                    await work(conn)
                return
            except RETRYABLE:
                if attempt == 5:
                    raise
                await asyncio.sleep(0.001 * attempt)

    @staticmethod
    async def _suspend(
        conn: psycopg.AsyncConnection[Any], *, row: Claimed, run: WorkflowRun
    ) -> None:
        async with conn.transaction():
            cursor = await conn.execute(store.SUSPEND, (row.id, row.lease))
            if await cursor.fetchone() is None:
                log.warning("rhythm: workflow %s was taken over by another worker", row.id)
                return
            if run.new_children:
                await conn.execute(store.INSERT, store.insert_params(run.new_children))
            await conn.execute(
                store.SUSPEND_RECHECK, (row.id, [store.step_literal(s) for s in run.awaited_steps])
            )

    # -- heartbeats, failover, notifications ----------------------------------------------

    async def _heartbeat(self, status: str) -> None:
        params = (
            self.worker_id,
            self.queues,
            socket.gethostname(),
            os.getpid(),
            self.concurrency,
            status,
        )
        await self._maint_conn.run(lambda conn: conn.execute(store.HEARTBEAT, params), attempts=3)

    async def _take_liveness(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """On each new heartbeat session: take this worker's liveness lock (store.TAKE_LIVENESS).
        Refused means an earlier session of this worker still lives on the server (a
        half-open connection it has not noticed yet); the heartbeat's dead_after then
        decides, and the lock is asked for again at each check."""
        cursor = await conn.execute(store.TAKE_LIVENESS, (self.worker_id,))
        row = await cursor.fetchone()
        self._liveness_held = bool(row and row[0])
        if not self._liveness_held:
            self._throttled.log(
                logging.WARNING,
                "liveness",
                "rhythm: worker %s's liveness lock is held by an older session of its own; "
                "asking again at the next check",
                self.worker_id,
            )

    async def _maintain(self) -> None:
        """Heartbeat every heartbeat_interval; look for dead workers every poll_interval, so
        that a worker whose process died is noticed within about a second."""
        every = min(self.poll_interval, self.heartbeat_interval)
        last_beat = time.monotonic()
        while not self._stopping.is_set():
            await asyncio.sleep(every)
            try:
                if not self._liveness_held:
                    await self._maint_conn.run(self._take_liveness, attempts=3)
                if time.monotonic() - last_beat >= self.heartbeat_interval:
                    last_beat = time.monotonic()
                    await self._timed("worker.heartbeat", "heartbeat", self._heartbeat("active"))
                found = await self._timed(
                    "worker.detect_dead_workers", "detect_dead", self._detect_dead()
                )
                if found and (found[0] or found[1]):
                    log.warning(
                        "rhythm: workers %s declared dead; %d execution(s) returned to pending",
                        ", ".join(found[0] or []) or "(earlier)",
                        found[1],
                    )
            except _LOST:
                pass  # the connection logs the outage once, and its end
            except psycopg.Error as exc:
                log.warning("rhythm: heartbeat failed: %s", str(exc).strip().splitlines()[0])

    async def _detect_dead(self) -> Any:
        async def check(conn: psycopg.AsyncConnection[Any]) -> Any:
            # A free liveness lock is trusted once this worker's own session is older than
            # two reconnect backoffs: after an outage that ended every session, the others
            # take their locks again within one backoff of the database's return, and are
            # not declared dead. Decided here, on the session the check runs on: a check
            # begun before an outage runs on the session opened after it.
            trusted = time.monotonic() - self._maint_conn.connected_at >= 2 * MAX_BACKOFF
            params = {"dead_after": self.dead_after, "me": self.worker_id, "trust_locks": trusted}
            return await conn.execute(store.DETECT_DEAD, params)

        cursor = await self._maint_conn.run(check, attempts=3)
        return await cursor.fetchone()

    async def _prune(self) -> None:
        """Every retention.EVERY seconds, delete finished executions past the retention age
        (one worker at a time: the others find the pruning lock taken)."""
        assert self.retention is not None
        await asyncio.sleep(retention.FIRST_AFTER)  # not while the worker starts up
        while not self._stopping.is_set():
            try:
                pruned = await retention.prune(
                    functools.partial(self._maint_conn.run, attempts=3),
                    self.retention,
                    stopping=self._stopping.is_set,
                )
                if pruned.rows:
                    log.info(
                        "rhythm: removed %d finished execution(s) (%d root(s) with their trees) "
                        "older than %s",
                        pruned.rows,
                        pruned.roots,
                        retention.describe(self.retention),
                    )
            except _LOST:
                pass  # the connection logs the outage once, and its end
            except psycopg.Error as exc:
                log.warning("rhythm: pruning failed: %s", str(exc).strip().splitlines()[0])
            await asyncio.sleep(retention.EVERY)  # cancelled at shutdown

    async def _timed(self, span_name: str, operation: str, work: Awaitable[T]) -> T:
        """Heartbeat work, timed and traced by the instruments when observability is on."""
        if self._instruments is None:
            return await work
        return await self._instruments.maintenance(span_name, operation, work)

    async def _listen(self, url: str, source: str) -> None:
        listener = Connection(url, source, "listen", statement_timeout=self.statement_timeout)
        delay = 0.1
        while not self._stopping.is_set():
            try:
                conn = await listener.get()
                await conn.execute(f"LISTEN {store.NOTIFY_CHANNEL}")
                await conn.execute(f"LISTEN {store.CANCEL_CHANNEL}")
                self._listening.set()
                if listener.note_recovered():
                    assert self._wake is not None
                    self._wake.set()  # notifications sent while away are lost: claim now
                delay = 0.1
                while not self._stopping.is_set():
                    async for note in conn.notifies(timeout=self.heartbeat_interval):
                        self._on_notify(note.channel, note.payload)
                    # a half-open session delivers nothing and says nothing: ask it
                    async with listener.bounded(conn):
                        await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                break
            except psycopg.Error as exc:
                listener.note_failure(exc)
                await listener.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        await listener.close()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == store.NOTIFY_CHANNEL:
            if payload in self.queues:
                assert self._wake is not None
                self._wake.set()
        elif channel == store.CANCEL_CHANNEL:
            task = self._inflight.get(payload)
            if task is not None:
                self._cancel_requested.add(payload)
                task.cancel()

    # -- stopping --------------------------------------------------------------------------

    def stop_observability(self) -> None:
        """Have the observability plugins send what they hold and stop, within what is left
        of ``shutdown_timeout`` since the stop began (less EXIT_RESERVE, at least
        MIN_FLUSH). The worker does it itself for a configuration it was given; ``rhythm
        worker`` calls it for the process's, read from ``RHYTHM_*``, once the worker ran."""
        began = self._stop_began if self._stop_began is not None else time.monotonic()
        left = began + self.shutdown_timeout - EXIT_RESERVE - time.monotonic()
        self._obs.shutdown(max(left, MIN_FLUSH))

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        """Stop within shutdown_timeout plus SHUTDOWN_GRACE, whatever the database does; the
        observability plugins send what they hold within what is left of shutdown_timeout
        (MIN_FLUSH at least), whatever their backends do."""
        self._stopping.set()
        began = self._stop_began = time.monotonic()
        deadline = began + self.shutdown_timeout + SHUTDOWN_GRACE
        running = list(self._inflight.values())
        if running:
            everything = asyncio.gather(*running, return_exceptions=True)
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait(
                (everything, hurry),
                timeout=self.shutdown_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            hurry.cancel()
            late = [task for task in running if not task.done()]
            if late:
                log.warning(
                    "rhythm: releasing %d execution(s) still running after %ss",
                    len(late),
                    self.shutdown_timeout,
                )
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        try:
            # Outcomes are retried while the database is away; past the deadline the rows stay
            # 'running' under this worker's id, and once this process has exited its liveness
            # lock is free and another worker returns them to pending.
            async with asyncio.timeout(max(deadline - time.monotonic(), 1.0)):
                await self._reporter.drain()
                await self._heartbeat("stopped")
        except (TimeoutError, psycopg.Error) as exc:
            log.error(
                "rhythm: could not write the last outcomes or the stopped state (%s); "
                "other workers return the unwritten executions to pending once this process "
                "has exited",
                exc or "timed out",
            )
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self.lingering_threads = self._threads_busy
        if self.lingering_threads:
            log.warning(
                "rhythm: %d sync function(s) still running in threads; their results "
                "will be discarded",
                self.lingering_threads,
            )
        self._threads.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pool.close(timeout=1.0), 3.0)
        for conn in (self._claim_conn, self._report_conn, self._maint_conn):
            await conn.close()  # bounded: a stalled peer is not waited for
        if self._instruments is not None:
            self._instruments.flush()  # the metric points gathered since the last flush
        if self._owns_observability:  # flush: nothing lost on a stop, within the budget
            await asyncio.to_thread(self.stop_observability)
        log.info("rhythm: worker %s stopped", self.worker_id)
