from __future__ import annotations

from collections.abc import Iterator

import pytest

from .otlp_sink import OtlpSink


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    """A real OTLP/gRPC receiver on loopback, stopped after the test."""
    receiver = OtlpSink().start()
    yield receiver
    receiver.stop()
