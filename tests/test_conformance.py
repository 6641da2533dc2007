"""The plugin conformance suite, run against the in-memory recording plugin and a reader
of what it recorded (the example JSON-lines plugin runs it against its files)."""

from __future__ import annotations

from typing import Any

import pytest

from rhythm_core.testing import RecordingPlugin, made_current
from rhythm_core.testing.conformance import PluginConformance, ReceivedMetric, ReceivedSpan


class RecorderReader:
    def __init__(self, recorder: RecordingPlugin) -> None:
        self.recorder = recorder

    def spans(self, trace_id: str) -> list[ReceivedSpan]:
        return [ReceivedSpan(s.name, s.trace_id, s.span_id, s.parent_span_id, s.start_ns,
                             s.end_ns or 0, s.status == "error")
                for s in self.recorder.in_trace(trace_id)]

    def metrics(self) -> list[ReceivedMetric]:
        return [ReceivedMetric(p.name, p.kind) for p in self.recorder.points]


class TestRecordingPluginConformance(PluginConformance):
    @pytest.fixture
    def conformance_plugin(self) -> RecordingPlugin:
        return RecordingPlugin()

    @pytest.fixture
    def conformance_reader(self, conformance_plugin: RecordingPlugin) -> Any:
        return RecorderReader(conformance_plugin)

    @pytest.fixture
    def conformance_current(self) -> Any:
        def read() -> tuple[str, str, bool] | None:
            found = made_current()
            return None if found is None else (found.trace_id, found.span_id, found.sampled)

        return read
