"""How spans become documents, sent through the plugin's emitter to the daemon stand-in and
read back from moto: nesting, independent subsegments, streaming of large segments, and
trimming of an entity too large alone."""

from __future__ import annotations

import time

import pytest
from rhythm_xray.emitter import DaemonEmitter
from rhythm_xray.segments import Documents

from rhythm_core.observability import CONSUMER, ERROR, INTERNAL, Span
from rhythm_core.testing import new_span_id, new_trace_id
from rhythm_core.testing.failover import wait_until

from .xray import MAX_DATAGRAM, Daemon, Reader


def _execution(children: int, size: int) -> tuple[str, list[Span]]:
    trace_id, execution, invoke = new_trace_id(), new_span_id(), new_span_id()
    now = time.time_ns()
    spans = [Span("step", trace_id, new_span_id(), invoke, now + n, INTERNAL, now + n + 1,
                  {"n": n, "payload": "x" * size}) for n in range(children)]
    spans.append(Span("function.invoke", trace_id, invoke, execution, now, INTERNAL,
                      now + children + 2, {"rhythm.function_name": "f"}))
    spans.append(Span("task.f", trace_id, execution, new_span_id(), now - 10, CONSUMER,
                      now + children + 3, {"rhythm.function_name": "f", "queue_name": "q"}))
    return trace_id, spans


def _send(daemon: Daemon, documents: Documents, trace_id: str, spans: list[Span]) -> int:
    emitter = DaemonEmitter(("127.0.0.1", daemon.port), documents)
    try:
        for document in documents.documents(trace_id, spans):
            emitter.send_document(document)
    finally:
        emitter.close()
    return emitter.sent


def test_an_execution_is_one_document_when_it_fits(daemon: Daemon, reader: Reader) -> None:
    trace_id, spans = _execution(5, 10)
    assert _send(daemon, Documents("svc", {}), trace_id, spans) == 1
    received = wait_until(lambda: (got := reader.spans(trace_id)) and len(got) == 7 and got,
                          "the execution's document never arrived")
    parents = {s.span_id: s.parent_span_id for s in received}
    assert parents == {s.span_id: s.parent_span_id for s in spans}


def test_a_large_segment_streams_its_subsegments(daemon: Daemon, reader: Reader) -> None:
    trace_id, spans = _execution(300, 1_000)  # ~330 kB as one document
    documents = Documents("svc", {})
    sent = _send(daemon, documents, trace_id, spans)
    assert sent > 5 and documents.trimmed == 0
    received = wait_until(lambda: (got := reader.spans(trace_id)) and len(got) == 302 and got,
                          "not every subsegment arrived")
    assert max(len(d) for d in daemon.datagrams) <= MAX_DATAGRAM
    parents = {s.span_id: s.parent_span_id for s in received}
    assert parents == {s.span_id: s.parent_span_id for s in spans}


def test_an_entity_too_large_alone_keeps_its_ids_and_error(daemon: Daemon,
                                                          reader: Reader) -> None:
    trace_id, spans = _execution(0, 0)
    execution = spans[-1]
    execution.attributes["payload"] = "z" * 100_000
    execution.status, execution.error_type = ERROR, "KeyError"
    execution.error_message = "m" * 100_000
    execution.error_stack = "".join(
        f'  File "/app/m{n}.py", line {n}, in f{n}\n    x()\n' for n in range(100))
    documents = Documents("svc", {})
    # its child streamed out first, then the segment itself, trimmed
    assert _send(daemon, documents, trace_id, spans) == 2
    assert documents.trimmed == 1 and documents.too_large == 0
    both = wait_until(lambda: (got := reader.moto.documents(trace_id)) and len(got) == 2 and got,
                      "not everything arrived")
    (document,) = [d for d in both if d["id"] == execution.span_id]
    (invoke,) = [d for d in both if d["id"] != execution.span_id]
    assert invoke["type"] == "subsegment" and invoke["parent_id"] == execution.span_id
    assert document["id"] == execution.span_id and document["fault"] is True
    (cause,) = document["cause"]["exceptions"]
    assert cause["type"] == "KeyError" and len(cause["message"]) == 1_000
    assert [f["label"] for f in cause["stack"]] == ["f97", "f98", "f99"]  # innermost kept
    assert document["metadata"]["rhythm"] == {"rhythm.truncated": True}
    assert document["annotations"]["rhythm_span"] == "task.f"


class _Opaque:
    def __str__(self) -> str:
        return "opaque value"


def _looped() -> dict[str, object]:
    looped: dict[str, object] = {"a": 1}
    looped["self"] = looped
    return looped


@pytest.mark.parametrize(("value", "arrives"), [
    (float("nan"), "nan"),
    (float("-inf"), "-inf"),
    (_Opaque(), "opaque value"),
    ({(1, 2): "tuple key"}, {"(1, 2)": "tuple key"}),
    (_looped(), {"a": 1, "self": "<cycle>"}),
    ('q"\\\n\u2028', 'q"\\\n\u2028'),
], ids=["nan", "infinity", "object", "tuple-key", "cycle", "text"])
def test_attributes_json_cannot_hold_arrive_as_text(daemon: Daemon, reader: Reader,
                                                    value: object, arrives: object) -> None:
    """A custom span's attributes are the application's values: one JSON cannot hold must
    not cost the trace (the daemon refuses a document that is not strict JSON)."""
    trace_id, spans = _execution(1, 0)
    spans[0].attributes["hostile"] = value
    assert _send(daemon, Documents("svc", {}), trace_id, spans) == 1
    received = wait_until(lambda: (got := reader.spans(trace_id)) and len(got) == 3 and got,
                          "the execution with a hostile attribute never arrived")
    (step,) = [s for s in received if s.span_id == spans[0].span_id]
    assert step.attributes["hostile"] == arrives and step.attributes["n"] == 0
    assert not daemon.problems
