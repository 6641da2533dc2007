"""The execution's entity as the X-Ray recorder's current one, so that the SDK's patches
(``patch(("requests", "botocore", "psycopg"))``) and the application's own subsegments nest
under the attempt's span.

Two pieces:

- :class:`VarContext`: the recorder's context with its entities kept in a context variable.
  The SDK's stock contexts keep them per thread (``Context``) or per asyncio task of one loop
  (``AsyncContext``); neither follows an execution both into its own asyncio task and into
  the pool thread a sync function runs in, which context variables do, the worker carrying
  the execution's context into the thread. The entities are a tuple, replaced rather than
  appended to, so that asyncio tasks started in a block do not share one stack.
- :class:`Anchor`: a segment that stands for the core's span (its id, the X-Ray form of its
  trace id, its sampling decision). It is never sent, since the core sends the span itself:
  what closes under it is streamed out at once as independent subsegments naming it as
  parent, as the SDK does under Lambda's facade segment. Most executions never ask for
  the current entity, so the anchor is made the first time something does (an SDK entity is
  far costlier to build than the context variable is to set).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar, Token
from typing import Any

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core.async_context import AsyncContext
from aws_xray_sdk.core.context import Context
from aws_xray_sdk.core.models.dummy_entities import DummySegment
from aws_xray_sdk.core.models.segment import Segment

from rhythm_core.observability import SpanContext

from .segments import xray_trace_id

log = logging.getLogger("rhythm_xray")
_entities: ContextVar[tuple[Any, ...]] = ContextVar("rhythm_xray_entities", default=())


class VarContext(Context):
    """The SDK's ``Context`` with its entity stack in a context variable."""

    def put_segment(self, segment: Any) -> None:
        _entities.set((segment,))

    def put_subsegment(self, subsegment: Any) -> None:
        entity = self.get_trace_entity()
        if not entity:
            log.warning("rhythm-xray: no open segment; subsegment %s discarded", subsegment.name)
            return
        entity.add_subsegment(subsegment)
        _entities.set((*_entities.get(), subsegment))

    def end_subsegment(self, end_time: Any = None) -> bool:
        entity = self.get_trace_entity()
        if getattr(entity, "type", None) == "subsegment":
            entity.close(end_time)
            _entities.set(_entities.get()[:-1])
            return True
        if not isinstance(entity, DummySegment):
            log.warning("rhythm-xray: no subsegment to end")
        return False

    def get_trace_entity(self) -> Any:
        found = self.current()
        if found is not None:
            return found
        if not global_sdk_config.sdk_enabled():
            return DummySegment()
        return self.handle_context_missing()

    def set_trace_entity(self, trace_entity: Any) -> None:
        _entities.set((trace_entity,))

    def clear_trace_entities(self) -> None:
        _entities.set(())

    @staticmethod
    def current() -> Any:
        """The open entity, or None, without the context-missing handling."""
        entities = _entities.get()
        if not entities:
            return None
        found = entities[-1]
        if found.__class__ is _Pending:
            found = found.anchor()
            _entities.set((*entities[:-1], found))
        return found


def keep_in_context_variables(recorder: Any) -> None:
    """Give ``recorder`` a :class:`VarContext` if it has one of the SDK's stock contexts
    (keeping its context-missing strategy); a context of the application's own is left as
    it is, with a warning."""
    context = recorder.context
    if type(context) is VarContext:
        return
    if type(context) in (Context, AsyncContext):
        recorder.context = VarContext(context_missing=context.context_missing)
        log.info(
            "rhythm-xray: the X-Ray recorder's entities are now kept in context variables "
            "(was %s), so that an execution's segment is current in its task and thread",
            type(context).__name__,
        )
        return
    if not getattr(recorder, "_rhythm_warned", False):
        recorder._rhythm_warned = True
        log.warning(
            "rhythm-xray: the X-Ray recorder has a context of its own (%s); an execution's "
            "segment is made current through it, which may not follow the execution into "
            "asyncio tasks or pool threads",
            type(context).__name__,
        )


class Anchor(Segment):
    """A segment standing for the core's span: never sent, its children streamed out as they
    close."""

    def ready_to_send(self) -> bool:
        return False

    def get_total_subsegments_size(self) -> int:
        return sys.maxsize  # past any streaming threshold: stream each subsegment that closes


class _Pending:
    """The core's span until something asks for the current entity."""

    __slots__ = ("context", "service")

    def __init__(self, service: str, context: SpanContext) -> None:
        self.service = service
        self.context = context

    def anchor(self) -> Anchor:
        core = self.context
        return Anchor(
            self.service,
            entityid=core.span_id,
            traceid=xray_trace_id(core.trace_id),
            sampled=core.sampled,
        )


class Current:
    """Makes an :class:`Anchor` for the core's span the recorder's current entity, and puts
    back what was current before."""

    __slots__ = ("_context", "_recorder", "_service", "_token")

    def __init__(self, recorder: Any, service: str, context: SpanContext) -> None:
        self._token: Token[tuple[Any, ...]] | None = None
        self._recorder = recorder
        self._service = service
        self._context = context

    def __enter__(self) -> None:
        recorder = self._recorder
        keep_in_context_variables(recorder)
        context = recorder.context
        pending = _Pending(self._service, self._context)
        if type(context) is VarContext:
            self._token = _entities.set((pending,))
        else:
            context.set_trace_entity(pending.anchor())

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _entities.reset(self._token)
        else:
            self._recorder.context.clear_trace_entities()
