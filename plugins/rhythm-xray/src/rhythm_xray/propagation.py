"""X-Ray's trace header, ``X-Amzn-Trace-Id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1``,
written into and read from an execution's carrier with aws-xray-sdk's ``TraceHeader``."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from aws_xray_sdk.core.models.trace_header import TraceHeader

from rhythm_core.observability import SpanContext

from .current import VarContext
from .segments import xray_trace_id

HEADER = "X-Amzn-Trace-Id"
ROOT = re.compile(r"^1-([0-9a-f]{8})-([0-9a-f]{24})$")
ENTITY_ID = re.compile(r"^[0-9a-f]{16}$")
NO_TRACE = "0" * 32
NO_SPAN = "0" * 16


def header(trace_id: str, parent_id: str, sampled: bool) -> str:
    """The header value for a core span (``trace_id`` as the core writes it)."""
    return TraceHeader(xray_trace_id(trace_id), parent_id, 1 if sampled else 0).to_header_str()


def entity_header(entity: Any) -> str | None:
    """The header for an application's open segment or subsegment; None for the SDK's no-op
    entities (an unsampled request whose ids are all zeros)."""
    trace_id, entity_id = str(getattr(entity, "trace_id", "")), str(getattr(entity, "id", ""))
    found = ROOT.match(trace_id)
    if not found or found[1] + found[2] == NO_TRACE or entity_id == NO_SPAN:
        return None
    return TraceHeader(trace_id, entity_id, 1 if entity.sampled else 0).to_header_str()


def read(carrier: Mapping[str, str], sample_rate: float) -> SpanContext | None:
    """The parent named by the carrier's header, or None when it is absent or malformed
    (the core then starts a new trace; the execution runs either way). ``Sampled=?`` (the
    decision left downstream) is decided here at the core's sample rate."""
    value = carrier.get(HEADER) or carrier.get(HEADER.lower())
    if not value:
        return None
    parsed = TraceHeader.from_header_str(value)
    root, parent = (parsed.root or "").lower(), (parsed.parent or "").lower()
    found = ROOT.match(root)
    if not found or not ENTITY_ID.match(parent) or parent == NO_SPAN:
        return None
    trace_id = found[1] + found[2]
    if trace_id == NO_TRACE:
        return None
    decided = parsed.sampled
    sampled = decided == 1 if decided in (0, 1) else random.random() < sample_rate
    return SpanContext(trace_id, parent, sampled, "")


def current_entity(recorder: Any) -> Any:
    """The application's open segment or subsegment on this thread or task, or None.

    Read from the recorder's context storage rather than through ``get_trace_entity()``,
    which logs an error (or raises, per ``AWS_XRAY_CONTEXT_MISSING``) whenever nothing is
    open: enqueueing outside a request is normal, not a missing context."""
    context = recorder.context
    if isinstance(context, VarContext):
        return context.current()
    local = getattr(context, "_local", None)
    if local is not None and type(context).__name__ in ("Context", "AsyncContext"):
        entities = getattr(local, "entities", None)
        return entities[-1] if entities else None
    try:  # another context (Lambda's): its own lookup, quietly
        return context.get_trace_entity()
    except Exception:
        return None
