"""An example rhythm-core observability plugin: every span and metric point as one JSON line.

Select it with ``RHYTHM_OBSERVABILITY_PROVIDER=jsonl`` (or ``"provider": "jsonl"``). The
file is ``options["jsonl"]["path"]`` or ``RHYTHM_JSONL_PATH`` (``{pid}`` in it is replaced
by the process id, so that each process writes its own file), default
``rhythm-telemetry-{pid}.jsonl``.

While user code runs under one of rhythm's spans, that span is this plugin's current one
(``rhythm_span_activate``): :func:`event` writes an application event line under it, as an
application's own instrumentation nests under rhythm's spans in a real backend.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import IO, Any

from rhythm_core.observability import MetricPoint, ObservabilityConfig, Span, SpanContext, hookimpl

_current: ContextVar[SpanContext | None] = ContextVar("rhythm_jsonl_current", default=None)


def current() -> SpanContext | None:
    """The rhythm span that is current here (None outside user code run by rhythm)."""
    return _current.get()


@contextmanager
def _current_while(context: SpanContext) -> Iterator[None]:
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def event(name: str, **attributes: Any) -> None:
    """Write an application event under the current rhythm span (its trace and span ids)."""
    found = _current.get()
    if found is None or not found.sampled:
        return  # nothing current, or an unsampled trace: recorded nowhere
    plugin._write({"type": "event", "name": name, "trace_id": found.trace_id,
                   "parent_span_id": found.span_id, "time_ns": time.time_ns(),
                   "attributes": attributes})


class JsonLinesPlugin:
    name = "jsonl"
    # the RHYTHM_* variables this plugin reads: the worker warns of any other it does not know
    environment_variables = ("RHYTHM_JSONL_PATH",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._config: ObservabilityConfig | None = None

    @hookimpl
    def rhythm_observability_configure(self, config: ObservabilityConfig) -> None:
        # Called again in a forked child: open that process's own file.
        self._config = config
        template = (config.options.get("jsonl", {}).get("path")
                    or os.environ.get("RHYTHM_JSONL_PATH", "rhythm-telemetry-{pid}.jsonl"))
        with self._lock:
            self._file = open(template.replace("{pid}", str(os.getpid())), "a",  # noqa: SIM115
                              encoding="utf-8", buffering=1)

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str)
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")  # line-buffered: on disk once written

    @hookimpl
    def rhythm_span_end(self, span: Span) -> None:
        self._write({
            "type": "span", "name": span.name, "trace_id": span.trace_id,
            "span_id": span.span_id, "parent_span_id": span.parent_span_id,
            "kind": span.kind, "start_ns": span.start_ns, "end_ns": span.end_ns,
            "status": span.status, "error_type": span.error_type,
            "error_message": span.error_message, "sampled": span.sampled,
            "kept_for_error": span.kept_for_error, "attributes": span.attributes,
            "links": [[link.trace_id, link.span_id] for link in span.links],
            "service": self._config.service_name if self._config else None,
            "pid": os.getpid(),
        })

    @hookimpl
    def rhythm_metric_emit(self, point: MetricPoint) -> None:
        self._write({"type": "metric", "name": point.name, "kind": point.kind,
                     "value": point.value, "observations": list(point.observations),
                     "unit": point.unit,
                     "attributes": point.attributes, "time_ns": point.time_ns})

    @hookimpl
    def rhythm_context_inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        if span is not None:
            carrier["x-jsonl-created-by"] = span.span_id

    @hookimpl
    def rhythm_context_extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        return None

    @hookimpl
    def rhythm_span_activate(self, context: SpanContext) -> AbstractContextManager[None]:
        return _current_while(context)

    @hookimpl
    def rhythm_observability_shutdown(self, timeout: float) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                self._file.close()
                self._file = None


plugin = JsonLinesPlugin()
