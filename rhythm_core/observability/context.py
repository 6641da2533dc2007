"""Trace and span ids, W3C Trace Context, baggage, and the carrier kept in
``executions.trace_context``.

The ids themselves are made by the engine (:mod:`rhythm_core.ids`); this module checks them
and reads and writes the carrier.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..ids import ZERO_SPAN, new_span_id, new_trace_id, valid_ids
from ..serialization import valid_unicode
from .telemetry import SpanContext

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32

MAX_CARRIER_BYTES = 16 * 1024
MAX_TRACESTATE_MEMBERS, MAX_TRACESTATE_CHARS = 32, 512
# W3C Baggage asks propagators to keep at least 64 entries and 8192 bytes; we keep exactly
# that much and no more.
MAX_BAGGAGE_ENTRIES, MAX_BAGGAGE_BYTES = 64, 8192
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[-_.]?key|auth|credential|cookie|session|private|signature",
    re.IGNORECASE,
)
_BAGGAGE_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class CarrierError(ValueError):
    """A carrier that cannot be trusted; the message says what is wrong with it."""


def format_traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def parse_traceparent(value: Any) -> SpanContext:
    """Parse a W3C ``traceparent``; raise :class:`CarrierError` saying what is wrong."""
    if not isinstance(value, str):
        raise CarrierError(f"traceparent is a {type(value).__name__}, not a string")
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        raise CarrierError(f"traceparent {value[:80]!r} is not version-traceid-parentid-flags")
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff":
        raise CarrierError("traceparent version ff is invalid")
    if version == "00" and rest:
        raise CarrierError("traceparent version 00 has extra fields")
    if trace_id == _ZERO_TRACE or span_id == ZERO_SPAN:
        raise CarrierError("traceparent has an all-zero id")
    return SpanContext(trace_id, span_id, sampled=bool(int(flags, 16) & 1))


def clean_tracestate(value: Any) -> str:
    """A valid, bounded ``tracestate`` or ``""`` (an invalid one is dropped, as W3C says)."""
    if not isinstance(value, str) or len(value) > MAX_TRACESTATE_CHARS:
        return ""
    members = [m.strip() for m in value.split(",") if m.strip()]
    if len(members) > MAX_TRACESTATE_MEMBERS or any("=" not in m for m in members):
        return ""
    return ",".join(members)


def parse_baggage(value: Any) -> tuple[tuple[str, str], ...]:
    """Baggage entries, bounded to 64 entries / 8192 bytes, with secret-looking keys dropped."""
    if not isinstance(value, str):
        return ()
    entries: list[tuple[str, str]] = []
    size = 0
    for item in value.split(","):
        key, sep, rest = item.partition("=")
        key = key.strip()
        if not sep or not _BAGGAGE_KEY.fullmatch(key) or _SECRET_KEY.search(key):
            continue
        raw = rest.split(";", 1)[0].strip()
        size += len(key) + len(raw) + 2
        if len(entries) >= MAX_BAGGAGE_ENTRIES or size > MAX_BAGGAGE_BYTES:
            break
        entries.append((key, raw))
    return tuple(entries)


def format_baggage(entries: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in entries)


def build_carrier(parent: SpanContext) -> dict[str, str]:
    """The carrier for an execution whose parent span is ``parent``."""
    carrier = {"traceparent": format_traceparent(parent.trace_id, parent.span_id, parent.sampled)}
    if parent.tracestate:
        carrier["tracestate"] = parent.tracestate
    if parent.baggage:
        carrier["baggage"] = format_baggage(parent.baggage)
    return carrier


@dataclass(slots=True)
class ClaimedContext:
    """What a worker knows of a claimed execution's place in its trace.

    :ivar trace_id: the trace (``executions.trace_id``, or a new one if the row's was unusable).
    :ivar span_id: the execution span's id (``executions.span_id``, or a new one).
    :ivar parent: the span that created the execution, or None for a root.
    :ivar sampled: the head-sampling decision carried from the root.
    :ivar problem: why the stored context was not usable (then ids are new and ``links`` hold
        what could be read), or None.
    """

    trace_id: str
    span_id: str
    parent: SpanContext | None
    sampled: bool
    problem: str | None = None
    links: tuple[SpanContext, ...] = ()


def read_claimed(
    trace_id: Any, span_id: Any, carrier: Any, sample: float, decide: Any = random.random
) -> ClaimedContext:
    """Read a claimed row's trace columns. Never raises: an unusable carrier starts a new root
    trace, with ``problem`` set and a link to whatever could be read."""
    try:
        parent = _read_carrier(trace_id, carrier)
        if not valid_ids(span_id=span_id):
            raise CarrierError(f"span_id {str(span_id)[:40]!r} is not 16 lower-case hex digits")
    except CarrierError as exc:
        links: tuple[SpanContext, ...] = ()
        if valid_ids(trace_id, span_id):
            links = (SpanContext(trace_id, span_id, False),)
        return ClaimedContext(
            new_trace_id(),
            span_id if valid_ids(span_id=span_id) else new_span_id(),
            None,
            decide() < sample,
            str(exc),
            links,
        )
    if parent is None:
        return ClaimedContext(trace_id, span_id, None, decide() < sample)
    return ClaimedContext(trace_id, span_id, parent, parent.sampled)


_TRACEPARENT_KEY = '"traceparent": "'
# A valid, unsampled version-00 traceparent as the column's JSON text holds it, the trace id
# captured: one match, in C, instead of decoding the carrier of every unsampled row at claim
# (bench.overhead, "on ... sample rate 0.1").
_UNSAMPLED_TRACEPARENT = re.compile(
    re.escape(_TRACEPARENT_KEY) + r'00-([0-9a-f]{32})-(?!0{16})[0-9a-f]{16}-00"'
)


def unsampled_at_a_glance(trace_id: Any, span_id: Any, carrier: str | None) -> bool:
    """True when a claimed row's ids are valid and its carrier's traceparent (in the column's
    JSON text) is a valid, unsampled parent of the same trace: the worker may then leave the
    carrier unread unless the attempt fails. False means: read it now."""
    if not valid_ids(trace_id, span_id):
        return False
    if carrier is None or len(carrier) > MAX_CARRIER_BYTES:
        return False
    at = carrier.find(_TRACEPARENT_KEY)  # the key's first place, as json would read it
    if at < 0:
        return False
    found = _UNSAMPLED_TRACEPARENT.match(carrier, at)
    return found is not None and found[1] == trace_id


def _read_carrier(trace_id: Any, carrier: Any) -> SpanContext | None:
    if not valid_ids(trace_id):
        raise CarrierError(f"trace_id {str(trace_id)[:40]!r} is not 32 lower-case hex digits")
    if carrier is None:
        return None
    if isinstance(carrier, str):  # the column's JSON text (claims fetch it undecoded)
        if len(carrier) > 2 * MAX_CARRIER_BYTES:  # not worth decoding
            raise CarrierError(f"trace_context is larger than {MAX_CARRIER_BYTES} bytes")
        try:
            carrier = json.loads(carrier)
        except (ValueError, RecursionError):  # nested past the parser's depth: a hostile row
            raise CarrierError("trace_context is not a flat JSON object") from None
    if not isinstance(carrier, Mapping):
        raise CarrierError(f"trace_context is a JSON {type(carrier).__name__}, not an object")
    size = 0
    for key, value in carrier.items():
        if not isinstance(value, str):
            raise CarrierError(f"trace_context[{key!r}] is a {type(value).__name__}, not a string")
        size += len(key) + len(value)
    if size > MAX_CARRIER_BYTES:
        raise CarrierError(f"trace_context is larger than {MAX_CARRIER_BYTES} bytes")
    if "traceparent" not in carrier:
        return None
    parent = read_carrier(carrier)
    if parent.trace_id != trace_id:
        raise CarrierError("traceparent names another trace than the row's trace_id")
    return parent


def carrier_problem(carrier: Mapping[Any, Any]) -> str | None:
    """Why ``carrier`` cannot be stored in a row and read back by a worker, or None: every
    key and value a string that jsonb stores (no NUL, no lone surrogate), all of it within
    :data:`MAX_CARRIER_BYTES`."""
    size = 0
    for key, value in carrier.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return f"carrier field {key!r:.60} is a {type(value).__name__}, not a string"
        text = key + value
        if "\x00" in text or not valid_unicode(text):
            return f"carrier field {key!r:.60} holds NUL or a lone surrogate"
        size += len(key) + len(value)
    if size > MAX_CARRIER_BYTES:
        return f"the carrier is larger than {MAX_CARRIER_BYTES} bytes"
    return None


def read_carrier(carrier: Mapping[str, Any]) -> SpanContext:
    """The parent context in a carrier's W3C fields (raises :class:`CarrierError`)."""
    parent = parse_traceparent(carrier.get("traceparent"))
    parent.tracestate = clean_tracestate(carrier.get("tracestate"))
    parent.baggage = parse_baggage(carrier.get("baggage"))
    return parent
