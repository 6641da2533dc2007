"""Make the SDK's spans carry the core's ids.

The SDK asks its id generator for a span id for every span and for a trace id for every
root. Just before starting a span the plugin puts the core's ids in a context variable; the
generator hands them out, and falls back to random ids for spans the application starts
itself through the same provider.
"""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

# (trace id, span id) as integers, for the span being started in this context
_next: ContextVar[tuple[int, int] | None] = ContextVar("rhythm_otel_next_ids", default=None)


class CoreIds(IdGenerator):
    """Ids from :func:`use` when set, else from ``fallback``."""

    def __init__(self, fallback: IdGenerator | None = None) -> None:
        self.fallback = fallback or RandomIdGenerator()

    def generate_span_id(self) -> int:
        ids = _next.get()
        return ids[1] if ids is not None else self.fallback.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = _next.get()
        return ids[0] if ids is not None else self.fallback.generate_trace_id()


def use(trace_id: int, span_id: int) -> object:
    """Set the ids of the next span started in this context; returns the reset token."""
    return _next.set((trace_id, span_id))


def done(token: object) -> None:
    _next.reset(token)  # type: ignore[arg-type]
