"""The core's finished spans as X-Ray segment documents, built as aws-xray-sdk entities and
cut into datagrams the daemon accepts.

Execution spans (and spans that start a trace, such as ``worker.heartbeat``) become segments,
named for the service as X-Ray expects; every other span becomes a subsegment, nested in its
parent's document when both are in hand, else sent on its own with ``trace_id`` and
``parent_id`` (an "independent subsegment"), as X-Ray allows. The X-Ray trace id is the
core's (``1-<first 8 hex>-<other 24>``), every entity id is the span id, times are the core's.

A document larger than a datagram streams its subsegments out as documents of their own, as
the SDK's recorder does; an entity too large alone keeps its ids, times, annotations and
error and loses its metadata and most of its stack.
"""

from __future__ import annotations

import functools
import logging
import re
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

from aws_xray_sdk.core.emitters.udp_emitter import PROTOCOL_DELIMITER, PROTOCOL_HEADER
from aws_xray_sdk.core.models.entity import Entity
from aws_xray_sdk.core.models.segment import Segment
from aws_xray_sdk.core.models.subsegment import Subsegment

from rhythm_core.observability import CLIENT, CONSUMER, ERROR, PRODUCER, Span

log = logging.getLogger("rhythm_xray")
HEADER = (PROTOCOL_HEADER + PROTOCOL_DELIMITER).encode()
# The daemon reads datagrams into a 64 KiB buffer; an IPv4 UDP payload is at most 65,507 bytes.
MAX_DATAGRAM = 64_000
MAX_NAME = 200  # X-Ray's limit on segment and subsegment names
STACK_FRAMES = 20  # the innermost frames of a failure's traceback kept in its cause
TRIMMED_STACK_FRAMES = 3
TRIMMED_MESSAGE = 1_000
# attribute -> annotation (X-Ray indexes annotations for filter expressions; keys may hold
# only letters, digits and underscores)
ANNOTATED = {
    "rhythm.execution_id": "rhythm_execution_id",
    "rhythm.function_name": "rhythm_function",
    "queue_name": "rhythm_queue",
}
QUEUE_FALLBACK = "messaging.destination.name"  # spans that carry no queue_name (create)
FRAME = re.compile(r'^\s*File "(?P<path>[^"]*)", line (?P<line>\d+), in (?P<label>.*)$')
NOT_IN_NAME = re.compile(r"[?;*()!$~^<>]")
NOT_ANNOTATION = re.compile(r"[^A-Za-z0-9_]")


class _PlainMetadata(Entity):
    """Serialized as the SDK serializes it, except for the metadata: the SDK walks every
    metadata value looking for objects to convert (half the cost of a document), and the
    core's attributes are already strings, numbers and booleans."""

    def to_dict(self) -> dict[str, Any]:
        metadata, self.metadata = self.metadata, {}
        try:
            document: dict[str, Any] = super().to_dict()
        finally:
            self.metadata = metadata
        if metadata:
            document["metadata"] = metadata
        return document


class _Segment(_PlainMetadata, Segment):
    pass


class _Subsegment(_PlainMetadata, Subsegment):
    pass


def xray_trace_id(trace_id: str) -> str:
    """The core's 32 hex digits, whose first 8 are the Unix time, as X-Ray writes them."""
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def annotation_key(name: str) -> str:
    return NOT_ANNOTATION.sub("_", name)[:250] or "_"


@functools.lru_cache(maxsize=1024)
def entity_name(name: str) -> str:
    """Without the characters X-Ray refuses in names (the SDK would strip them too, logging a
    warning for each entity), at most 200 long."""
    return NOT_IN_NAME.sub("", name)[:MAX_NAME] or "rhythm"


def is_segment(span: Span) -> bool:
    """An execution span, or a span that starts its own trace."""
    return span.kind == CONSUMER or span.parent_span_id is None


@functools.lru_cache(maxsize=256)
def _exception_type(name: str) -> type[Exception]:
    """A stand-in class with the failed exception's type name: the SDK's ``Throwable`` reads
    the type and message off an exception object, and the core hands over names and text."""
    return type(name or "Exception", (Exception,), {})


def _frames(stack: str | None) -> traceback.StackSummary:
    """The ``File ..., line N, in f`` lines of a formatted traceback, innermost last, as
    ``traceback.extract_tb`` would give them to the SDK."""
    frames = []
    for line in (stack or "").splitlines():
        found = FRAME.match(line)
        if found:
            frames.append((found["path"], int(found["line"]), found["label"], None))
    return traceback.StackSummary.from_list(frames[-STACK_FRAMES:])


class Documents:
    """Builds the entities of a trace's spans and serializes them into datagrams."""

    def __init__(self, service: str, tags: Mapping[str, str], limit: int = MAX_DATAGRAM) -> None:
        self.service = entity_name(service)
        self.tag_annotations = {annotation_key(k): str(v) for k, v in tags.items()}
        self.limit = limit
        self.trimmed = 0  # entities that lost metadata to fit a datagram
        self.too_large = 0  # entities that did not fit even so, and were dropped

    # -- building --------------------------------------------------------------------------

    def entities(self, trace_id: str, spans: list[Span]) -> list[Entity]:
        """The documents to send for spans of one trace: segments, and subsegments whose
        parent is not among ``spans``; the others are nested in their parents."""
        xray_id = xray_trace_id(trace_id)
        made: dict[str, Entity] = {}
        anchor: Segment | None = None  # the SDK's subsegments need a segment object
        for span in spans:
            if is_segment(span):
                made[span.span_id] = anchor = self._segment(span, xray_id)
        for span in spans:
            if span.span_id not in made:
                if anchor is None:
                    anchor = Segment(self.service, traceid=xray_id)
                made[span.span_id] = self._subsegment(span, anchor)
        documents = []
        for span in spans:
            entity = made[span.span_id]
            parent = made.get(span.parent_span_id or "")
            if parent is not None and isinstance(entity, Subsegment):
                parent.add_subsegment(entity)  # sets parent_id
            else:
                documents.append(entity)
        for span in spans:
            made[span.span_id].close((span.end_ns or span.start_ns) / 1e9)
        return documents

    def _segment(self, span: Span, xray_id: str) -> _Segment:
        segment = _Segment(
            self.service, entityid=span.span_id, traceid=xray_id, parent_id=span.parent_span_id
        )
        segment.annotations.update(self.tag_annotations)
        segment.annotations["rhythm_span"] = span.name
        self._fill(segment, span)
        return segment

    def _subsegment(self, span: Span, anchor: Segment) -> _Subsegment:
        database = span.kind in (CLIENT, PRODUCER) and "db.system.name" in span.attributes
        subsegment = _Subsegment(entity_name(span.name), "remote" if database else "local", anchor)
        subsegment.id = span.span_id
        subsegment.parent_id = span.parent_span_id  # replaced when nested in its parent
        if database:
            subsegment.set_sql({"database_type": "PostgreSQL"})
        self._fill(subsegment, span)
        return subsegment

    @staticmethod
    def _fill(entity: Entity, span: Span) -> None:
        entity.start_time = span.start_ns / 1e9
        attributes = span.attributes
        annotations = entity.annotations
        for attribute, key in ANNOTATED.items():
            value = attributes.get(attribute)
            if value is not None:
                annotations[key] = value
        if "rhythm_queue" not in annotations and attributes.get(QUEUE_FALLBACK):
            annotations["rhythm_queue"] = attributes[QUEUE_FALLBACK]
        if span.kept_for_error:
            annotations["rhythm_kept_for_error"] = True
        entity.metadata = {"rhythm": attributes}  # read-only here, as the core asks
        if span.status == ERROR:
            # fault: the failure is the worker's own, not a caller's (X-Ray's "error")
            exception = _exception_type(span.error_type or "Exception")(span.error_message or "")
            entity.add_exception(exception, _frames(span.error_stack))

    # -- sending ---------------------------------------------------------------------------

    def datagrams(self, entity: Entity) -> Iterator[bytes]:
        """The entity as daemon datagrams (header line, then the document), none longer than
        the limit."""
        datagram = HEADER + entity.serialize().encode()
        if len(datagram) <= self.limit:
            yield datagram
            return
        if entity.subsegments:
            # stream the children out on their own; each carries trace_id and parent_id
            children, entity.subsegments = entity.subsegments, []
            for child in children:
                yield from self.datagrams(child)
            datagram = HEADER + entity.serialize().encode()
            if len(datagram) <= self.limit:
                yield datagram
                return
        self.trimmed += 1
        _trim(entity)
        datagram = HEADER + entity.serialize().encode()
        if len(datagram) <= self.limit:
            yield datagram
            return
        self.too_large += 1
        if self.too_large == 1:
            log.warning(
                "rhythm-xray: a segment of %d bytes does not fit a datagram even without its "
                "metadata; dropped (logged once)",
                len(datagram),
            )


def _trim(entity: Entity) -> None:
    """Keep what X-Ray needs to place and judge the entity; drop what made it large."""
    entity.metadata = {"rhythm": {"rhythm.truncated": True}}
    entity.annotations = {
        k: v[:TRIMMED_MESSAGE] if isinstance(v, str) else v for k, v in entity.annotations.items()
    }
    cause: Any = entity.cause
    if isinstance(cause, dict):
        for throwable in cause.get("exceptions", ()):
            if getattr(throwable, "message", None):
                throwable.message = throwable.message[:TRIMMED_MESSAGE]
            if getattr(throwable, "stack", None):
                throwable.stack = throwable.stack[-TRIMMED_STACK_FRAMES:]
