"""The hooks an observability plugin implements (pluggy project ``rhythm``).

A plugin is any object or module with functions marked ``@rhythm_core.hookimpl`` whose names
and parameters are those below; it implements any subset and may omit trailing parameters
it does not use. Plugins are selected by provider name from the entry-point group
``rhythm.observability``, or passed as objects in the observability configuration.

Every call is isolated: an exception raised by a hookimpl is caught, logged (rate-limited)
and counted in ``rhythm.observability.errors``; it never fails an execution.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager

import pluggy

from .config import ObservabilityConfig
from .telemetry import MetricPoint, Span, SpanContext

PROJECT = "rhythm"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rhythm_observability_configure(config: ObservabilityConfig) -> None:
    """Set up exporters and clients from the resolved configuration.

    Fires once per process after the plugin is loaded, and again in a child process after a
    fork (exporter threads and sockets do not survive a fork). Build exporters here, never at
    import time. Raise :class:`rhythm_core.ConfigError` for settings of the plugin's own that
    are invalid (``options["<name>"]``): the worker then fails to start with that message.
    Any other exception is counted and logged like those of the other hooks.

    :param config: the resolved configuration: worker config over ``RHYTHM_*`` variables over
        defaults. Values left ``None`` (endpoint, service name) are for the plugin to take from
        its backend's own variables (``OTEL_*``, ``DD_*``, ``AWS_XRAY_*``) or defaults.
    """


@hookspec
def rhythm_span_start(span: Span) -> None:
    """A span begins.

    Fires when the core opens a span. Spans the core builds after the fact (execution spans,
    spans of a failed execution kept by ``sample_errors``) get this hook and
    :func:`rhythm_span_end` one after the other; use ``span.start_ns``, not the clock.

    :param span: the span; keep your native span object in ``span.native[<plugin name>]``.
        Its ids (``trace_id``, ``span_id``, ``parent_span_id``) are the core's and must be the
        ones your backend records.
    """


@hookspec
def rhythm_span_end(span: Span) -> None:
    """A span ends.

    :param span: the span passed to :func:`rhythm_span_start`, now with ``end_ns``, ``status``
        and, on failure, ``error_type``, ``error_message`` and ``error_stack`` set.
    """


@hookspec
def rhythm_metric_emit(point: MetricPoint) -> None:
    """A metric is recorded.

    Fires for every counter increment, histogram observation and gauge reading, from the
    engine's catalogue and from ``rhythm_core.metrics``. Aggregate in process; do not do I/O
    here.

    :param point: name, kind (``counter``, ``histogram``, ``gauge``), value, unit, attributes
        and time. A histogram point may carry several observations (``point.observations``,
        gathered over up to a quarter of a second): record each of ``point.each()``.
    """


@hookspec
def rhythm_context_inject(span: Span | None, carrier: MutableMapping[str, str]) -> None:
    """An execution is being created: write propagation fields into its carrier.

    The carrier is stored in ``executions.trace_context`` and read back by the worker that
    claims the execution. The core has already written W3C ``traceparent`` (and
    ``tracestate``, ``baggage``); add your backend's own keys (``x-datadog-*``,
    ``X-Amzn-Trace-Id``...).

    :param span: the span under which the execution is created, or None when the core has no
        current span (enqueueing from application code): then write your backend's current
        context, if any, so that an application span (a web request) becomes the parent.
    :param carrier: string keys to string values.
    """


@hookspec(firstresult=True)
def rhythm_context_extract(carrier: Mapping[str, str]) -> SpanContext | None:
    """Read a parent context from a carrier the core could not read itself.

    Fires when an execution is created without a core span and the carrier holds no valid
    W3C ``traceparent`` after :func:`rhythm_context_inject` (a backend that propagates only
    its own format). The first non-None result wins.

    :param carrier: the carrier as written by the plugins.
    :return: the parent context, or None.
    """


@hookspec
def rhythm_span_activate(context: SpanContext) -> AbstractContextManager[object] | None:
    """Make a core span the current span of the backend's own context, for a block of user
    code, so that the application's instrumentation (HTTP clients, database drivers, spans it
    opens itself) nests under it and propagates its trace downstream.

    Fires just before user code runs under a core span: around each attempt of a task's
    function (an async function inside the execution's own asyncio task; a sync one in the
    pool thread, inside the execution's copied context), around each resumption of a
    workflow pass's asyncio tasks, and around each ``rhythm_core.trace.span`` block. The core
    enters the returned context manager at once and exits it when the block ends, in the same
    thread and context; whatever the manager returns from ``__exit__`` is ignored (an
    exception of user code is never swallowed). Not called at all when tracing is off.

    A context manager rather than a pair of attach and detach hooks: a backend's enter and
    exit must pair up in one thread and context, and each plugin keeps what its exit needs
    (a context token, the entity it replaced) in its own object instead of the core routing
    tokens back to the plugin that made them.

    :param context: the span to make current: its ``trace_id`` and ``span_id`` are the
        core's, as every backend records them. ``sampled`` is False for an unsampled
        execution and while a workflow replays steps already recorded: make an unsampled
        context with those ids, so that downstream calls carry the trace id with the
        not-sampled flag and the application's spans are not recorded.
    :return: a context manager, or None to leave the backend's context as it is.
    """


@hookspec
def rhythm_observability_shutdown(timeout: float) -> None:
    """Flush and stop: the worker is stopping (SIGTERM and SIGINT included) or the process
    exits.

    Nothing may be lost on a graceful stop: export everything buffered before returning.

    :param timeout: seconds the plugin may take.
    """
