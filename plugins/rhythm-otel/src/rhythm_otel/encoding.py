"""The core's finished spans written straight to OTLP protobuf bytes.

The SDK's encoder builds a protobuf object per attribute, key and value, which made export,
not the engine, the cost of tracing. Written by hand, with each attribute's bytes
remembered (queue, function and worker names repeat on every span), a span costs a small
fraction of that (bench.otel_overhead). The field numbers are those of
``opentelemetry/proto/trace/v1/trace.proto``; a test checks the bytes against the SDK's own
encoder.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rhythm_core.observability import ERROR, Span

KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
# span flags: the parent's "is remote" is known (0x100) and true (0x200); our parents always
# come from a carrier or a row, so they are remote as far as this process knows
FLAGS_ROOT = 0x100
FLAGS_REMOTE_PARENT = 0x300
KEPT_FOR_ERROR = "rhythm.sampling.kept_for_error"
_CACHE_LIMIT = 8192
PAUSE_EVERY = 16  # spans encoded between pauses that let the event loop's thread run
_HASHABLE = frozenset((str, int, float, bool))
# tag and length of the fixed-size id fields: trace_id (1), span_id (2), parent_span_id (4)
_TRACE_ID, _SPAN_ID, _PARENT_ID = b"\x0a\x10", b"\x12\x08", b"\x22\x08"
_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack
_times = struct.Struct("<BQBQ").pack


_SMALL = [bytes((n,)) for n in range(0x80)]


def varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64  # int64 on the wire: two's complement, ten bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings, bytes and nested messages."""
    size = len(payload)
    return varint(number << 3 | 2) + (_SMALL[size] if size < 0x80 else varint(size)) + payload


def text(number: int, value: str) -> bytes:
    return field(number, value.encode()) if value else b""


def any_value(value: Any) -> bytes:
    """An ``AnyValue`` message's body."""
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return field(1, value.encode())
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return field(7, value)
    if isinstance(value, Mapping):
        return field(6, b"".join(field(1, key_value(str(k), v)) for k, v in value.items()))
    if isinstance(value, Sequence):
        return field(5, b"".join(field(1, any_value(v)) for v in value))
    return b""  # None, or a type OTLP cannot carry: an empty value, as the SDK sends


def key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message's body."""
    return field(1, key.encode()) + field(2, any_value(value))


class AttributeCache:
    """Each (key, value) pair's encoded ``KeyValue`` field (span attributes, field 9), kept
    while the set stays small. The type is part of the key: ``True`` and ``1`` are equal in
    Python, not in OTLP."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, Any, type], bytes] = {}
        self._heads: dict[tuple[str, str], bytes] = {}  # (name, kind) -> fields 5 and 6

    def fields(self, attributes: Mapping[str, Any]) -> bytes:
        known = self._known
        out = []
        for key, value in attributes.items():
            try:
                out.append(known[(key, value, value.__class__)])
            except (KeyError, TypeError):  # TypeError: an unhashable value (a list)
                encoded = field(9, key_value(key, value))
                if value.__class__ in _HASHABLE:
                    if len(known) >= _CACHE_LIMIT:
                        known.clear()  # high-cardinality values: start over, stay bounded
                    known[(key, value, value.__class__)] = encoded
                out.append(encoded)
        return b"".join(out)

    def head(self, name: str, kind: str) -> bytes:
        """The span's name and kind fields, the same for every span of a function."""
        found = self._heads.get((name, kind))
        if found is None:
            found = text(5, name) + b"\x30" + varint(KINDS.get(kind, 1))
            if len(self._heads) >= _CACHE_LIMIT:
                self._heads.clear()
            self._heads[(name, kind)] = found
        return found


def _status(span: Span) -> bytes:
    if span.status == ERROR:
        message = span.error_message or span.error_type or ""
        return field(15, text(2, message) + b"\x18\x02")
    return field(15, b"\x18\x01")


def _exception_event(span: Span) -> bytes:
    event: dict[str, str] = {"exception.type": span.error_type or "Exception"}
    if span.error_message:
        event["exception.message"] = span.error_message
    if span.error_stack:
        event["exception.stacktrace"] = span.error_stack
    body = b"\x09" + _fixed64(span.end_ns or span.start_ns) + text(2, "exception")
    body += b"".join(field(3, key_value(k, v)) for k, v in event.items())
    return field(11, body)


def _link(trace_id: str, span_id: str) -> bytes:
    body = field(1, bytes.fromhex(trace_id)) + field(2, bytes.fromhex(span_id))
    flags = b"\x35" + _fixed32(FLAGS_REMOTE_PARENT)  # field 6, fixed32
    return field(13, body + flags)


def span_message(span: Span, cache: AttributeCache) -> bytes:
    """One ``Span`` message's body."""
    parent = span.parent_span_id
    out = [
        _TRACE_ID + bytes.fromhex(span.trace_id) + _SPAN_ID + bytes.fromhex(span.span_id),
        _PARENT_ID + bytes.fromhex(parent) if parent else b"",
        cache.head(span.name, span.kind),
        _times(0x39, span.start_ns, 0x41, span.end_ns or span.start_ns),  # fields 7 and 8
        cache.fields(span.attributes),
    ]
    if span.kept_for_error:
        out.append(cache.fields({KEPT_FOR_ERROR: True}))
    if span.status == ERROR:
        out.append(_exception_event(span))
        out.extend(_link(x.trace_id, x.span_id) for x in span.links)
        out.append(_status(span))
        out.append(_FLAGS_CHILD if parent else _FLAGS_ROOT)
    else:
        out.extend(_link(x.trace_id, x.span_id) for x in span.links)
        out.append(_OK_CHILD if parent else _OK_ROOT)
    return b"".join(out)


def scope_message(name: str, version: str) -> bytes:
    return text(1, name) + text(2, version)


def resource_message(attributes: Mapping[str, Any]) -> bytes:
    return b"".join(field(1, key_value(k, v)) for k, v in attributes.items())


def export_request(
    resource: bytes,
    scope: bytes,
    spans: Iterable[Span],
    cache: AttributeCache,
    pause: Callable[[], object] | None = None,
) -> bytes:
    """An ``ExportTraceServiceRequest``: one resource, one scope, the spans. ``pause`` is
    called every few spans (the shipping thread lets the event loop have the GIL there)."""
    parts = [field(1, scope)]
    for n, span in enumerate(spans, 1):
        parts.append(field(2, span_message(span, cache)))
        if pause is not None and not n % PAUSE_EVERY:
            pause()
    return field(1, field(1, resource) + field(2, b"".join(parts)))


# the span's last fields: flags (16, fixed32: tag varint(16 << 3 | 5) = 0x85 0x01), after the
# status (15) when it is OK
_FLAGS_CHILD = b"\x85\x01" + _fixed32(FLAGS_REMOTE_PARENT)
_FLAGS_ROOT = b"\x85\x01" + _fixed32(FLAGS_ROOT)
_OK_CHILD = field(15, b"\x18\x01") + _FLAGS_CHILD
_OK_ROOT = field(15, b"\x18\x01") + _FLAGS_ROOT
