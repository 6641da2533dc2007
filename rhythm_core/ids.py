"""Execution, trace and span ids: every row gets all three, observability on or off, so that
the database alone holds the trace tree.

Trace ids are 128-bit with the Unix time in seconds in the first 32 bits, so the same id is a
valid OpenTelemetry, Datadog (128-bit) and X-Ray (``1-<8 hex>-<24 hex>``) trace id. Span ids
are 64-bit and never zero. A row that starts its own trace takes the trace id as its
execution id: the index on ``trace_id`` leaves such rows out (their id finds them), so the
common case adds no index entry on insert, claim or report.

Ids are written as ``bytes.hex()`` rather than through a format spec, and a batch takes the
random part of its ids from one draw: every enqueued row pays for this (``bench.overhead``).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import NewExecution

ZERO_SPAN = "0" * 16
ONE_SPAN = "0" * 15 + "1"  # stands in for a drawn all-zero span id, which W3C forbids
_TRACE_ID = re.compile(r"(?!0{32})[0-9a-f]{32}")
_SPAN_ID = re.compile(r"(?!0{16})[0-9a-f]{16}")
_BOTH = re.compile(r"(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}")
_UNCHECKED: object = object()


def valid_ids(trace_id: object = _UNCHECKED, span_id: object = _UNCHECKED) -> bool:
    """True when each id given is well formed: a trace id is 32 and a span id 16 lower-case
    hex digits, not all zeros (W3C). A null or non-text id is not. Ids read from rows,
    carriers and plugins go through here before they are trusted."""
    if span_id is _UNCHECKED:
        return type(trace_id) is str and _TRACE_ID.fullmatch(trace_id) is not None
    if trace_id is _UNCHECKED:
        return type(span_id) is str and _SPAN_ID.fullmatch(span_id) is not None
    # both, as every claimed row has them: one match
    return (
        type(trace_id) is str
        and type(span_id) is str
        and _BOTH.fullmatch(f"{trace_id}-{span_id}") is not None
    )


def new_trace_id() -> str:
    """Unix seconds in the first 32 bits (X-Ray's layout), 96 random bits after them."""
    head = (int(time.time()) & 0xFFFFFFFF) << 96
    return (head | random.getrandbits(96)).to_bytes(16, "big").hex()


def execution_id_of(trace_id: str) -> str:
    """The execution id (a UUID) of the root execution that started ``trace_id``."""
    t = trace_id
    return f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:]}"  # the UUID text layout


def new_execution_id() -> str:
    """A random execution id for a row that joins an existing trace."""
    return execution_id_of(random.getrandbits(128).to_bytes(16, "big").hex())


def new_span_id() -> str:
    return (random.getrandbits(64) or 1).to_bytes(8, "big").hex()


def random_hex(digits: int) -> str:
    """``digits`` random lower-case hex digits (an even number)."""
    return random.randbytes(digits // 2).hex()


def _span_id(drawn: str) -> str:
    return drawn if drawn != ZERO_SPAN else ONE_SPAN


def start_own_traces(rows: Sequence[NewExecution]) -> None:
    """Give each row a new trace of its own, whose id is the row's execution id (unless the
    row has an id already: an insert retried with the same rows keeps it)."""
    head = (int(time.time()) & 0xFFFFFFFF).to_bytes(4, "big").hex()
    drawn, at = random_hex(40 * len(rows)), 0
    for row in rows:
        row.trace_id = head + drawn[at : at + 24]
        if not row.id:
            row.id = execution_id_of(row.trace_id)
        row.span_id = _span_id(drawn[at + 24 : at + 40])
        at += 40


def join_trace(rows: Sequence[NewExecution], trace_id: str | None) -> None:
    """Give each row an id and a span id in ``trace_id`` (a workflow's children); when the
    parent's stored trace id is malformed, each starts a trace of its own instead."""
    if not valid_ids(trace_id):
        start_own_traces(rows)
        return
    assert trace_id is not None
    drawn, at = random_hex(48 * len(rows)), 0
    for row in rows:
        row.trace_id = trace_id
        if not row.id:
            row.id = execution_id_of(drawn[at : at + 32])
        row.span_id = _span_id(drawn[at + 32 : at + 48])
        at += 48
