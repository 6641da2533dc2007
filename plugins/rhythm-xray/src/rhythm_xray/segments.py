"""The core's finished spans as X-Ray segment documents, cut into datagrams the daemon accepts.

Execution spans (and spans that start a trace, such as ``worker.heartbeat``) become segments,
named for the service as X-Ray expects; every other span becomes a subsegment, nested in its
parent's document when both are in hand, else sent on its own with ``trace_id`` and
``parent_id`` (an "independent subsegment"), as X-Ray allows. The X-Ray trace id is the
core's (``1-<first 8 hex>-<other 24>``), every entity id is the span id, times are the core's.

The documents are built as plain dicts in the fields of X-Ray's segment document schema and
serialized once. aws-xray-sdk's entity objects were built and then walked back into dicts,
most of a traced execution's cost on the send thread (BENCHMARKS.md); the SDK stays what the
application's own instrumentation runs on (``current.py``).

A document larger than a datagram streams its subsegments out as documents of their own, as
the SDK's recorder does; an entity too large alone keeps its ids, times, annotations and
error and loses its metadata and most of its stack.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from rhythm_core.observability import CLIENT, CONSUMER, ERROR, PRODUCER, Span

log = logging.getLogger("rhythm_xray")
# every datagram the daemon reads starts with this line
HEADER = b'{"format":"json","version":1}\n'
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


def _frames(stack: str | None) -> list[dict[str, Any]]:
    """The ``File ..., line N, in f`` lines of a formatted traceback, innermost last, as the
    stack of an X-Ray exception: file name, line, function."""
    frames = []
    for line in (stack or "").splitlines():
        found = FRAME.match(line)
        if found:
            path = os.path.basename(found["path"]).replace('"', " ").strip()
            frames.append(
                {"path": path, "line": int(found["line"]), "label": found["label"].strip()}
            )
    return frames[-STACK_FRAMES:]


class Documents:
    """Builds the segment documents of a trace's spans and serializes them into datagrams."""

    def __init__(self, service: str, tags: Mapping[str, str], limit: int = MAX_DATAGRAM) -> None:
        self.service = entity_name(service)
        self.tag_annotations = {annotation_key(k): str(v) for k, v in tags.items()}
        self.limit = limit
        self.working_directory = os.getcwd()  # as the SDK records it with each failure
        self.trimmed = 0  # entities that lost metadata to fit a datagram
        self.too_large = 0  # entities that did not fit even so, and were dropped

    # -- building --------------------------------------------------------------------------

    def documents(self, trace_id: str, spans: list[Span]) -> list[dict[str, Any]]:
        """The documents to send for spans of one trace: segments, and subsegments whose
        parent is not among ``spans``; the others are nested in their parents."""
        xray_id = xray_trace_id(trace_id)
        made = {
            span.span_id: self._segment(span, xray_id)
            if is_segment(span)
            else self._subsegment(span, xray_id)
            for span in spans
        }
        documents = []
        for span in spans:
            document = made[span.span_id]
            parent = made.get(span.parent_span_id or "")
            if parent is not None and document.get("type") == "subsegment":
                parent.setdefault("subsegments", []).append(document)
            else:
                documents.append(document)
        return documents

    def _segment(self, span: Span, xray_id: str) -> dict[str, Any]:
        document = self._entity(self.service, span, xray_id)
        if span.parent_span_id is not None:
            document["parent_id"] = span.parent_span_id
        document["annotations"] = {
            **self.tag_annotations,
            "rhythm_span": span.name,
            **document["annotations"],
        }
        return document

    def _subsegment(self, span: Span, xray_id: str) -> dict[str, Any]:
        document = self._entity(entity_name(span.name), span, xray_id)
        # the parent's id whether nested or sent on its own; X-Ray reads it from either
        document["parent_id"] = span.parent_span_id
        document["type"] = "subsegment"
        if span.kind in (CLIENT, PRODUCER) and "db.system.name" in span.attributes:
            document["namespace"] = "remote"
            document["sql"] = {"database_type": "PostgreSQL"}
        else:
            document["namespace"] = "local"
        if not document["annotations"]:
            del document["annotations"]
        return document

    def _entity(self, name: str, span: Span, xray_id: str) -> dict[str, Any]:
        """The fields segments and subsegments share."""
        attributes = span.attributes
        annotations = {}
        for attribute, key in ANNOTATED.items():
            value = attributes.get(attribute)
            if value is not None:
                annotations[key] = value
        if "rhythm_queue" not in annotations and attributes.get(QUEUE_FALLBACK):
            annotations["rhythm_queue"] = attributes[QUEUE_FALLBACK]
        if span.kept_for_error:
            annotations["rhythm_kept_for_error"] = True
        document: dict[str, Any] = {
            "name": name,
            "id": span.span_id,
            "trace_id": xray_id,
            "start_time": span.start_ns / 1e9,
            "end_time": (span.end_ns or span.start_ns) / 1e9,
            "annotations": annotations,
            "metadata": {"rhythm": attributes},  # read-only here, as the core asks
        }
        if span.status == ERROR:
            # fault: the failure is the worker's own, not a caller's (X-Ray's "error")
            document["fault"] = True
            document["cause"] = self._cause(span)
        return document

    def _cause(self, span: Span) -> dict[str, Any]:
        exception: dict[str, Any] = {
            "id": os.urandom(8).hex(),
            "type": span.error_type or "Exception",
            "remote": False,
        }
        if span.error_message:
            exception["message"] = span.error_message
        frames = _frames(span.error_stack)
        if frames:
            exception["stack"] = frames
        return {"working_directory": self.working_directory, "exceptions": [exception]}

    # -- sending ---------------------------------------------------------------------------

    def datagrams(self, document: dict[str, Any]) -> Iterator[bytes]:
        """The document as daemon datagrams (header line, then the document), none longer
        than the limit."""
        datagram = _datagram(document)
        if len(datagram) <= self.limit:
            yield datagram
            return
        children = document.pop("subsegments", None)
        if children:
            # stream the children out on their own; each carries trace_id and parent_id
            for child in children:
                yield from self.datagrams(child)
            datagram = _datagram(document)
            if len(datagram) <= self.limit:
                yield datagram
                return
        self.trimmed += 1
        _trim(document)
        datagram = _datagram(document)
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


def _datagram(document: dict[str, Any]) -> bytes:
    # default=str: a custom span's attribute of another type is sent as its text, as the
    # SDK's serializer does; allow_nan=False: the daemon refuses a document holding NaN
    try:
        text = json.dumps(document, separators=(",", ":"), allow_nan=False, default=str)
    except (ValueError, TypeError):  # NaN or infinity, a key JSON cannot hold, a cycle
        text = json.dumps(_json_safe(document), separators=(",", ":"), default=str)
    return HEADER + text.encode()


def _json_safe(value: Any, within: frozenset[int] = frozenset()) -> Any:
    """``value`` with what JSON cannot hold written as text: NaN and infinities, keys that
    are not strings, a container found inside itself."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple):
        if id(value) in within:
            return "<cycle>"
        inner = within | {id(value)}
        if isinstance(value, dict):
            return {str(k): _json_safe(v, inner) for k, v in value.items()}
        return [_json_safe(v, inner) for v in value]
    return value


def _trim(document: dict[str, Any]) -> None:
    """Keep what X-Ray needs to place and judge the entity; drop what made it large."""
    document["metadata"] = {"rhythm": {"rhythm.truncated": True}}
    if "annotations" in document:
        document["annotations"] = {
            k: v[:TRIMMED_MESSAGE] if isinstance(v, str) else v
            for k, v in document["annotations"].items()
        }
    for exception in document.get("cause", {}).get("exceptions", ()):
        if "message" in exception:
            exception["message"] = exception["message"][:TRIMMED_MESSAGE]
        if "stack" in exception:
            exception["stack"] = exception["stack"][-TRIMMED_STACK_FRAMES:]
