"""Trace context read from rows: malformed carriers start a new root trace, with a warning,
and the execution still completes; ids, traceparent, tracestate and baggage rules."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rhythm_core
from rhythm_core.ids import new_span_id, new_trace_id, valid_ids
from rhythm_core.observability import context as tc
from rhythm_core.testing import RecordingPlugin

from .apps import traced

TRACE = "6b083b5f247c0ef3db2c7cdc2208eb09"
SPAN = "00f067aa0ba902b7"
PARENT = "b7ad6b7169203331"
GOOD = f"00-{TRACE}-{PARENT}-01"

class RawJson(str):
    """A carrier inserted as this JSON text, as it is (json.dumps cannot nest this deep)."""


# (row trace_id, row span_id, trace_context as stored) — each unusable in its own way
MALFORMED: dict[str, tuple[Any, Any, Any]] = {
    "truncated traceparent": (TRACE, SPAN, {"traceparent": GOOD[:30]}),
    "version ff": (TRACE, SPAN, {"traceparent": "ff" + GOOD[2:]}),
    "version 00 with extra field": (TRACE, SPAN, {"traceparent": GOOD + "-extra"}),
    "zero trace id": (TRACE, SPAN, {"traceparent": f"00-{'0' * 32}-{PARENT}-01"}),
    "zero parent id": (TRACE, SPAN, {"traceparent": f"00-{TRACE}-{'0' * 16}-01"}),
    "non-hex": (TRACE, SPAN, {"traceparent": f"00-{'z' * 32}-{PARENT}-01"}),
    "upper-case hex": (TRACE, SPAN, {"traceparent": GOOD.upper()}),
    "traceparent a number": (TRACE, SPAN, {"traceparent": 42}),
    "traceparent null": (TRACE, SPAN, {"traceparent": None}),
    "traceparent a list": (TRACE, SPAN, {"traceparent": [GOOD]}),
    "traceparent an object": (TRACE, SPAN, {"traceparent": {"v": GOOD}}),
    "carrier a list": (TRACE, SPAN, [GOOD]),
    "carrier a number": (TRACE, SPAN, 7),
    "carrier a non-JSON string": (TRACE, SPAN, "traceparent=" + GOOD),
    "carrier a JSON string of a list": (TRACE, SPAN, json.dumps([1, 2])),
    "huge baggage": (TRACE, SPAN, {"traceparent": GOOD, "baggage": "k=" + "v" * 20000}),
    "huge carrier": (TRACE, SPAN, {f"key{i}": "x" * 100 for i in range(300)}),
    "another trace": (TRACE, SPAN, {"traceparent": f"00-{'a' * 32}-{PARENT}-01"}),
    "row trace_id null": (None, SPAN, {"traceparent": GOOD}),
    "row trace_id short": (TRACE[:20], SPAN, {"traceparent": GOOD}),
    "row span_id null": (TRACE, None, {"traceparent": GOOD}),
    "row span_id zero": (TRACE, "0" * 16, {"traceparent": GOOD}),
    "unicode digits": (TRACE, SPAN, {"traceparent": GOOD.replace("0", "\uff10")}),
    "unicode in trace id": (TRACE, SPAN, {"traceparent": f"00-{'é' * 32}-{PARENT}-01"}),
    # past the JSON parser's recursion limit, yet under the carrier's size bound
    "nested 3,000 deep": (TRACE, SPAN, RawJson("[" * 3000 + "]" * 3000)),
}



def insert_row(db, trace_id: Any, span_id: Any, carrier: Any) -> str:
    execution_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, args, trace_id, span_id,"
        " trace_context) VALUES (%s, 'task', %s, 'traced', '[5]', %s, %s, %s::jsonb)",
        (execution_id, traced.plain.name, trace_id, span_id,
         carrier if isinstance(carrier, RawJson) else json.dumps(carrier)),
    )
    return execution_id


def test_malformed_carriers_start_new_root_traces(start_worker, db, caplog) -> None:
    assert len(MALFORMED) >= 20
    recorder = RecordingPlugin()
    caplog.set_level(logging.WARNING, logger="rhythm.worker")
    ids = {name: insert_row(db, *row) for name, row in MALFORMED.items()}
    start_worker("traced", observability={"plugins": [recorder],
                                          "traces": {"enabled": True, "sample_rate": 1}})
    for name, execution_id in ids.items():
        assert rhythm_core.wait(execution_id, timeout=20) == 50, name
    recorder.wait_for(lambda r: len(r.named(f"task.{traced.plain.name}")) == len(ids))
    warned = [r.getMessage() for r in caplog.records if "unusable trace context" in r.getMessage()]
    assert len(warned) == 1, warned  # one line for the lot, not one per row
    assert any(f"execution {i} has an unusable trace context" in warned[0] for i in ids.values())
    for name, execution_id in ids.items():
        old_trace, old_span, _ = MALFORMED[name]
        row = db.execute("SELECT trace_id, span_id FROM executions WHERE id = %s",
                         (execution_id,)).fetchone()
        assert row is not None
        new_trace, new_span = row
        assert valid_ids(new_trace) and new_trace != old_trace, name
        assert valid_ids(span_id=new_span), name
        (execution,) = [s for s in recorder.named(f"task.{traced.plain.name}")
                        if s.attributes["rhythm.execution_id"] == execution_id]
        assert (execution.trace_id, execution.span_id) == (new_trace, new_span), name
        assert execution.parent_span_id is None, name  # a new root
        if valid_ids(old_trace) and valid_ids(span_id=old_span):
            assert [(link.trace_id, link.span_id) for link in execution.links] == [
                (old_trace, old_span)], name


def test_a_valid_carrier_is_continued(start_worker, db) -> None:
    recorder = RecordingPlugin()
    execution_id = insert_row(db, TRACE, SPAN, {"traceparent": GOOD, "tracestate": "a=1,b=2",
                                                "baggage": "tenant=acme"})
    start_worker("traced", observability={"plugins": [recorder],
                                          "traces": {"enabled": True, "sample_rate": 0}})
    assert rhythm_core.wait(execution_id, timeout=10) == 50
    (execution,) = recorder.wait_for(lambda r: r.named(f"task.{traced.plain.name}"))
    assert (execution.trace_id, execution.span_id, execution.parent_span_id) == (TRACE, SPAN,
                                                                                 PARENT)
    assert execution.sampled  # the flag in the carrier, not this worker's sample_rate of 0


@settings(max_examples=300, deadline=None)
@given(
    trace_id=st.one_of(st.none(), st.text(max_size=40), st.just(TRACE)),
    span_id=st.one_of(st.none(), st.text(max_size=20), st.just(SPAN)),
    carrier=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                  st.text(max_size=80), st.just(GOOD)),
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(st.sampled_from(["traceparent", "tracestate",
                                                                 "baggage", "x"]), inner,
                                                max_size=4)),
        max_leaves=10,
    ),
)
def test_reading_any_carrier_never_fails(trace_id: Any, span_id: Any, carrier: Any) -> None:
    context = tc.read_claimed(trace_id, span_id, carrier, 0.5)
    assert valid_ids(context.trace_id) and valid_ids(span_id=context.span_id)
    if context.problem is None:
        assert (context.trace_id, context.span_id) == (trace_id, span_id)
    else:
        assert context.parent is None and context.trace_id != trace_id


def test_ids() -> None:
    import time

    trace_ids = {new_trace_id() for _ in range(1000)}
    assert len(trace_ids) == 1000 and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in trace_ids)
    assert all(abs(int(t[:8], 16) - time.time()) < 5 for t in trace_ids)  # X-Ray's epoch part
    span_ids = {new_span_id() for _ in range(1000)}
    assert all(valid_ids(span_id=s) for s in span_ids) and len(span_ids) == 1000


def test_traceparent_round_trip_and_flags() -> None:
    parsed = tc.parse_traceparent(tc.format_traceparent(TRACE, PARENT, False))
    assert (parsed.trace_id, parsed.span_id, parsed.sampled) == (TRACE, PARENT, False)
    future = tc.parse_traceparent(f"01-{TRACE}-{PARENT}-03-future-fields")
    assert future.sampled is True  # a later version is read as far as version 00 goes


def test_tracestate_is_bounded_and_invalid_is_dropped() -> None:
    assert tc.clean_tracestate("a=1, b=2") == "a=1,b=2"
    assert tc.clean_tracestate(",".join(f"k{i}=v" for i in range(33))) == ""
    assert tc.clean_tracestate("novalue") == ""
    assert tc.clean_tracestate("a=" + "x" * 600) == ""


def test_baggage_keeps_64_entries_and_8kb_and_drops_secrets() -> None:
    many = ",".join(f"key{i}=value{i}" for i in range(100))
    assert len(tc.parse_baggage(many)) == 64
    big = ",".join(f"k{i}={'v' * 1000}" for i in range(20))
    kept = tc.parse_baggage(big)
    assert sum(len(k) + len(v) + 2 for k, v in kept) <= 8192 and len(kept) == 8
    entries = dict(tc.parse_baggage(
        "tenant=acme,password=hunter2,API_KEY=x,session_id=s,auth-token=t,user=ada;prop=1"))
    assert entries == {"tenant": "acme", "user": "ada"}


@pytest.mark.parametrize("value", [None, 3, "", "=novalue", "bad key=1"])
def test_baggage_ignores_junk(value: Any) -> None:
    assert tc.parse_baggage(value) == ()


HEXISH = st.text(alphabet="0123456789abcdefABCDEF g", max_size=50)


def _well_formed(value: Any, digits: int) -> bool:
    """The rule for ids, spelled out without a regular expression."""
    return (isinstance(value, str) and len(value) == digits
            and all(c in "0123456789abcdef" for c in value) and value != "0" * digits)


@given(trace_id=st.one_of(st.none(), st.integers(), HEXISH, st.just(TRACE), st.just("0" * 32),
                          st.just(TRACE + "\n")),
       span_id=st.one_of(st.none(), st.integers(), HEXISH, st.just(SPAN), st.just("0" * 16),
                         st.just(SPAN + "\n")))
def test_the_id_check_agrees_with_the_rule(trace_id, span_id) -> None:
    assert valid_ids(trace_id) == _well_formed(trace_id, 32)
    assert valid_ids(span_id=span_id) == _well_formed(span_id, 16)
    assert valid_ids(trace_id, span_id) == (
        _well_formed(trace_id, 32) and _well_formed(span_id, 16))


def test_ids_split_at_the_wrong_place_are_refused() -> None:
    # 48 hex digits either way, but not 32 + 16
    assert not valid_ids(TRACE[:31], TRACE[31] + SPAN)
    assert not valid_ids(TRACE + SPAN[0], SPAN[1:])
    assert valid_ids(TRACE, SPAN)


TRACEPARENTS = st.one_of(
    st.just(GOOD), st.just(GOOD[:-2] + "00"), st.just(f"00-{TRACE}-{'0' * 16}-00"),
    st.just(f"01-{TRACE}-{PARENT}-00"), st.just(f"00-{TRACE.upper()}-{PARENT}-00"),
    st.just(f"00-{'1' * 32}-{PARENT}-00"), st.just(f"00-{TRACE}-{PARENT}-00-extra"),
    st.text(alphabet="0123456789abcdef-", max_size=60),
)


@given(traceparent=TRACEPARENTS,
       other=st.dictionaries(st.sampled_from(["tracestate", "baggage", "x-traceparent", "b"]),
                             st.one_of(st.text(max_size=20), TRACEPARENTS), max_size=3),
       trace_id=st.one_of(st.just(TRACE), st.just("1" * 32), HEXISH))
@settings(max_examples=300)
def test_a_carrier_left_unread_at_claim_reads_as_unsampled_in_the_same_trace(
        traceparent, other, trace_id) -> None:
    # the column's text as PostgreSQL's jsonb prints it (keys sorted by length, ", " and ": ")
    carrier = json.dumps(dict(sorted({**other, "traceparent": traceparent}.items(),
                                     key=lambda kv: (len(kv[0]), kv[0]))))
    glance = tc.unsampled_at_a_glance(trace_id, SPAN, carrier)
    read = tc.read_claimed(trace_id, SPAN, carrier, 1.0)
    if glance:  # what the claim loop skips reading must be exactly this
        assert read.problem is None and not read.sampled and read.trace_id == trace_id
    elif read.problem is None and not read.sampled and read.parent is not None:
        # an unsampled, usable parent that the glance did not see: only another version's
        # traceparent, or one with more after its flags, which is then read in full
        assert not traceparent.startswith("00-") or len(traceparent) > 55
