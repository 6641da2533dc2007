"""The example plugin, loaded by provider name through its entry point, runs the core's
conformance suite against the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import rhythm_core
from rhythm_core.testing.conformance import (
    QUEUE,
    PluginConformance,
    ReceivedMetric,
    ReceivedSpan,
    conformance_ok,
)


class FileReader:
    """Reads back what the plugin wrote: the plugin's 'backend' is its files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _records(self) -> list[dict[str, Any]]:
        records = []
        for path in self.directory.glob("*.jsonl"):
            for line in path.read_text().splitlines():
                if line.endswith("}"):  # a line still being written is skipped
                    records.append(json.loads(line))
        return records

    def spans(self, trace_id: str) -> list[ReceivedSpan]:
        return [ReceivedSpan(r["name"], r["trace_id"], r["span_id"], r["parent_span_id"],
                             r["start_ns"], r["end_ns"], r["status"] == "error")
                for r in self._records() if r["type"] == "span" and r["trace_id"] == trace_id]

    def metrics(self) -> list[ReceivedMetric]:
        return [ReceivedMetric(r["name"], r["kind"]) for r in self._records()
                if r["type"] == "metric"]


class TestJsonLinesConformance(PluginConformance):
    @pytest.fixture
    def conformance_plugin(self) -> str:
        return "jsonl"  # by provider name, through the rhythm.observability entry point

    @pytest.fixture
    def telemetry_dir(self, tmp_path: Path) -> Path:
        return tmp_path

    @pytest.fixture
    def conformance_options(self, telemetry_dir: Path) -> dict[str, Any]:
        return {"options": {"jsonl": {"path": str(telemetry_dir / "t-{pid}.jsonl")}}}

    @pytest.fixture
    def conformance_reader(self, telemetry_dir: Path) -> FileReader:
        return FileReader(telemetry_dir)

    @pytest.fixture
    def conformance_current(self) -> Any:
        import rhythm_jsonl

        def read() -> tuple[str, str, bool] | None:
            found = rhythm_jsonl.current()
            return None if found is None else (found.trace_id, found.span_id, found.sampled)

        return read


def test_selected_by_name_and_only_then_imported(tmp_path: Path) -> None:
    code = f"""
import sys
import time
from rhythm_core import Worker
assert "rhythm_jsonl" not in sys.modules
Worker("x", observability={{"traces": {{"enabled": False}}}})
assert "rhythm_jsonl" not in sys.modules, "loaded although observability is off"
Worker("x", observability={{"provider": "jsonl", "traces": {{"enabled": True}},
       "options": {{"jsonl": {{"path": {str(tmp_path / "t.jsonl")!r}}}}}}})
assert "rhythm_jsonl" in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_spans_reach_the_file_by_name(rhythm_worker: Any, tmp_path: Path) -> None:
    path = tmp_path / "by-name-{pid}.jsonl"
    rhythm_worker(QUEUE, observability={
        "provider": "jsonl", "traces": {"enabled": True, "sample_rate": 1.0},
        "options": {"jsonl": {"path": str(path)}}})
    assert rhythm_core.wait(conformance_ok.queue(1), timeout=30) == 2
    wanted, deadline = f"task.{conformance_ok.name}", time.monotonic() + 10
    while True:  # the outcome is committed (wait() returns) before its spans are emitted
        names = {r["name"] for r in FileReader(tmp_path)._records() if r["type"] == "span"}
        if wanted in names or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert wanted in names


@rhythm_core.task(queue=QUEUE, retries=0, name="rhythm_jsonl.tests.with_event")
def with_event(order: int) -> int:
    import rhythm_jsonl

    rhythm_jsonl.event("order.checked", order=order)
    return order


def test_an_application_event_is_written_under_the_attempt(
    rhythm_worker: Any, tmp_path: Path
) -> None:
    rhythm_worker(QUEUE, observability={
        "provider": "jsonl", "traces": {"enabled": True, "sample_rate": 1.0},
        "options": {"jsonl": {"path": str(tmp_path / "t-{pid}.jsonl")}}})
    execution_id = with_event.queue(7)
    assert rhythm_core.wait(execution_id, timeout=30) == 7
    reader = FileReader(tmp_path)

    def written() -> Any:
        records = reader._records()
        events = [r for r in records if r["type"] == "event"]
        invokes = [r for r in records if r["type"] == "span" and r["name"] == "function.invoke"
                   and r["attributes"].get("rhythm.execution_id") == execution_id]
        return events and invokes and (events, invokes[0])

    deadline = time.monotonic() + 10
    while not (found := written()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, "the event or the attempt's span was not written"
    (event,), invoke = found
    assert event["name"] == "order.checked" and event["attributes"] == {"order": 7}
    assert (event["trace_id"], event["parent_span_id"]) == (invoke["trace_id"],
                                                           invoke["span_id"])
